"""What a staged book says and holds (``book._run_summary``, ``_runs_table``, ``stage_book``'s writing part), on
hand-made folders: the intro's facts (which run each page shows, the runs, the pages shown recorded or in
placeholder), which files are staged where, and that no absolute path of the build machine is published.
No run, no papermill, no jupyter-book."""
from __future__ import annotations

import json
import re

import pytest

from clipalign_utils.orchestration import book, recorded
from clipalign_utils.orchestration.book import BookBuildFailed
from clipalign_utils.registry import REPO_ROOT

PER_RUN = ["01_train", "02_iqa_alignment", "03_shape_texture_bias", "04_noise_robustness", "07_similarity",
           "08_saliency"]
SYNTHESIS = "05_tradeoff_synthesis"


def _nb(path, duration=None, run_dir=None):
    """An executed page: papermill's duration and run_dir, its injected cell and an output naming the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    given = {"run_dir": str(run_dir)} if run_dir else {}
    path.write_text(json.dumps({"cells": [
        {"cell_type": "code", "metadata": {"tags": ["injected-parameters"]}, "source": f'run_dir = "{run_dir}"',
         "outputs": []},
        {"cell_type": "code", "metadata": {}, "source": "", "outputs": [
            {"output_type": "stream", "name": "stdout", "text": f"read {run_dir}/metrics/iqa.csv\n"}]}],
        "metadata": {"papermill": {"duration": duration, "parameters": given}}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def _run(folder, seed, checkpoints=2, durations=True, model="clipalign-tiny"):
    """A run clipalign trained: checkpoints, its training record, every per-run page, its world figure."""
    (folder / "checkpoints").mkdir(parents=True)
    for epoch in range(checkpoints):
        (folder / "checkpoints" / f"epoch_{epoch}.pt").write_bytes(b"")
    (folder / "train_params.json").write_text(json.dumps({"seed": seed, "model": model}))
    for i, name in enumerate(PER_RUN):
        _nb(folder / "notebooks" / f"{name}.ipynb", 10.4 + i if durations else None, folder)
    (folder / "figures").mkdir()
    (folder / "figures" / "world_training_pairs.png").write_bytes(b"png of " + folder.name.encode())
    return folder


def _folder_of_runs(tmp_path):
    folder = tmp_path / "default"
    _run(folder / "tiny-seed10", 10, durations=False)
    _run(folder / "tiny-seed2", 2, checkpoints=3)
    (folder / "runs.json").write_text("{}")
    _nb(folder / "notebooks" / f"{SYNTHESIS}.ipynb", 3.0, folder)
    return folder


def _sweep(folder, names):
    folder.mkdir(parents=True)
    (folder / "sweep.json").write_text(json.dumps({"preset": "smoke", "fixed": {}, "swept": {"lr": ["a", "b"]},
                                                   "one_at_a_time": False, "runs": [{"name": name} for name in names]}))
    for i, name in enumerate(names):
        _run(folder / name, i)
        _nb(folder / name / "notebooks" / f"{SYNTHESIS}.ipynb", 1.0, folder / name)
    _nb(folder / "notebooks" / "06_sweep.ipynb", 2.0, folder)
    return folder


def _summary(run_dir, **kwargs):
    sources, trained = book._notebook_sources(run_dir)
    return book._run_summary(run_dir, sources, trained, **kwargs)


def test_the_runs_table_has_a_row_per_run_in_plan_order_with_its_seed_checkpoints_and_training_time(tmp_path):
    # seed2 before seed10 (as planned); a training page without papermill's duration: "?"
    folder = _folder_of_runs(tmp_path)
    (folder / "real_a").mkdir()  # a streamed trajectory is no run of the folder
    (folder / "real_a" / "source.json").write_text("{}")
    assert book._runs_table(folder) == [
        "| run | scale | seed | checkpoints | trained in |", "|---|---|---|---|---|",
        "| `tiny-seed2` | clipalign-tiny | 2 | 3 | 10 s |",
        "| `tiny-seed10` | clipalign-tiny | 10 | 2 | ? |", ""]
    (folder / "tiny-seed2" / "notebooks" / "01_train.ipynb").unlink()  # no training page at all: "?" too
    assert book._runs_table(folder)[2] == "| `tiny-seed2` | clipalign-tiny | 2 | 3 | ? |"


def test_a_folder_of_runs_intro_names_the_run_its_pages_show_and_the_runs_its_synthesis_reads(tmp_path):
    """The runs the synthesis reads in the order the table below lists them (seed2 before seed10)."""
    folder = _folder_of_runs(tmp_path)
    text = _summary(folder)
    assert text.startswith("Pages 1–4 and 7–8 show the run `tiny-seed2`; page 5 synthesises all runs of this "
                           "directory: `tiny-seed2`, `tiny-seed10`.\n\n| run | scale |")
    assert "| `tiny-seed2` | clipalign-tiny | 2 | 3 | 10 s |\n| `tiny-seed10` | clipalign-tiny | 10 | 2 | ? |" in text
    # each page shown: its executed time; the training record and checkpoints of the run the pages show
    assert "| `01_train` | executed in 10 s |" in text and "| `08_saliency` | executed in 15 s |" in text
    assert f"| `{SYNTHESIS}` | executed in 3 s |" in text
    assert "| training | `seed=2`, `model=clipalign-tiny` |\n| checkpoints | 3 |\n" in text
    assert "This build ran no sweep: page 6 says how to produce one." in text
    assert "quality experiment" not in text and "This build produced no" not in text


def test_a_sweep_intro_names_its_first_planned_run_and_lists_its_runs(tmp_path):
    sweep = _sweep(tmp_path / "sw", ["lr-b", "lr-a"])
    text = _summary(sweep)
    assert text.startswith("Pages 1–5 and 7–8 show the run `lr-b`, the first of this sweep's runs: `lr-b`, `lr-a`."
                           "\n\nPage 6 compares the runs of the sweep in this directory.\n\n| | |")


def test_an_experiment_intro_lists_the_runs_of_the_sweep_its_pages_show(tmp_path):
    """An experiment's runs lie in its sweeps: the intro named none ("the first of this sweep's runs: .")."""
    experiment = tmp_path / "quality"
    experiment.mkdir()
    (experiment / "experiment.json").write_text(json.dumps({"experiment": "quality", "preset": "default",
                                                          "sweeps": {"variation": {}}}))
    _sweep(experiment / "b_sweep", ["b0"])
    _sweep(experiment / "a_sweep", ["a1", "a0"])
    _nb(experiment / "notebooks" / "09_quality_experiment.ipynb", 1.0, experiment)
    text = _summary(experiment)
    assert text.startswith("Pages 1–5 and 7–8 show the run `a1`, the first of the sweep `a_sweep`'s runs: `a1`, "
                           "`a0`.\n\nPage 6 compares the runs of the sweep in `a_sweep`.\n\nPage 9 compares the runs "
                           "of the quality experiment in this directory (its settings table lists them).\n\n| | |")


def test_the_intro_names_the_pages_shown_recorded_and_in_placeholder_by_chapter(tmp_path):
    run = _run(tmp_path / "r", 0)
    _nb(run / "notebooks" / f"{SYNTHESIS}.ipynb", 1.0, run)
    text = _summary(run, recorded_pages=["06_sweep", "09_quality_experiment"],
                    placeholders=["11_interpolation", "10_real_clip"])
    sweep, experiment = recorded.index("06_sweep")["commit"], recorded.index("09_quality_experiment")["commit"]
    assert text.startswith(
        f"This build ran no sweep: page 6 shows the one recorded in `book/recorded/06_sweep/` (measured at commit "
        f"`{sweep}`; the page says how).\n\nThis build ran no experiment: page 9 shows the one recorded in "
        f"`book/recorded/09_quality_experiment/` (measured at commit `{experiment}`; the page says how).\n\n"
        "This build produced no page 10, a public CLIP trajectory analysed from its source (`clipalign run "
        "--checkpoints`; a page when the build holds one); no page 11, weight interpolation between an early and a "
        "late checkpoint (`clipalign run --out FOLDER --only interpolation`): each of these pages says what it shows "
        "in its place (results recorded in the repository, or none) and how to produce its own.\n\n| | |")
    assert "-p seed=0" in text  # a run of its own: its seed in the command that makes it again


def test_every_command_in_a_page_description_is_code():
    """The intro prints the descriptions in Markdown: outside backticks MyST makes `--only` "–only", which a
    reader pasting the command gets wrong."""
    from clipalign_utils import registry

    for name, page in registry.pages().items():
        prose = re.sub(r"`[^`]*`", "", page.description)
        assert "clipalign" not in prose and "--" not in prose, name


def test_the_intro_names_where_inner_sweep_and_experiment_pages_come_from(tmp_path):
    """The full preset's folder: its drivers sweep and quality experiment lie inside it."""
    folder = _folder_of_runs(tmp_path)
    _sweep(folder / "drivers", ["base"])
    (folder / "quality").mkdir()
    (folder / "quality" / "experiment.json").write_text(json.dumps({"experiment": "quality", "preset": "default",
                                                                  "sweeps": {"variation": {}}}))
    _nb(folder / "quality" / "notebooks" / "09_quality_experiment.ipynb", 1.0, folder / "quality")
    text = _summary(folder)
    assert ("\nPage 6 compares the runs of the sweep in `drivers`.\n\nPage 9 compares the runs of the quality "
            "experiment in `quality` (its settings table lists them).\n\n| | |") in text


def test_the_intro_table_shows_the_values_a_page_was_given_without_the_run_dir(tmp_path):
    run = _run(tmp_path / "r", 0)
    _nb(run / "notebooks" / f"{SYNTHESIS}.ipynb", 1.0, run)
    (run / "record.json").write_text(json.dumps({"steps": {"iqa": {"preset": "default", "parameters": {
        "run_dir": str(run), "auto_train": False, "distance": "cosine", "iqa_root": "/data/kadid10k",
        "not_declared": 1}, "sources": {}}}}))
    assert ("| `02_iqa_alignment` | `preset=default`, `distance=cosine`, `iqa_root=…/kadid10k`; executed in 11 s |"
            in _summary(run))


def test_the_intro_table_shows_list_values_as_p_takes_them(tmp_path):
    """0.02,0.05 as the notebook pages and `-p` write them, not a Python list's [0.02, 0.05]."""
    run = _run(tmp_path / "r", 0)
    _nb(run / "notebooks" / f"{SYNTHESIS}.ipynb", 1.0, run)
    (run / "train_params.json").write_text(json.dumps({"seed": 0, "early_checkpoints": [0.125, 0.25, 0.5, 0.75]}))
    (run / "record.json").write_text(json.dumps({"steps": {
        "iqa": {"preset": "default", "parameters": {"iqa_levels": [1, 2, 3, 4, 5]}, "sources": {}},
        "noise": {"preset": "default", "parameters": {"sigmas": [0.02, 0.05, 0.1, 0.2]}, "sources": {}}}}))
    text = _summary(run)
    assert "| `02_iqa_alignment` | `preset=default`, `iqa_levels=1,2,3,4,5`; executed in 11 s |" in text
    assert "| `04_noise_robustness` | `preset=default`, `sigmas=0.02,0.05,0.1,0.2`; executed in 13 s |" in text
    assert "| training | `seed=0`, `early_checkpoints=0.125,0.25,0.5,0.75` |" in text


def _prose(name):
    """A page of the book's prose, its lines joined as Markdown reads them."""
    return " ".join((REPO_ROOT / "book" / name).read_text().split())


def test_the_intro_scope_holds_for_a_build_of_one_scale():
    assert ("three analyses and their synthesis, over seeds and, where a build has several, model scales, with "
            "distances measured as the authors do") in _prose("intro.md")


def test_the_scale_page_says_what_the_default_run_leaves_out_without_a_dangling_neither():
    assert ("budget on two CPU cores; `--scales` adds others. The default run leaves out the sweep behind page 6, "
            "*What drives the trade-off?* (each setting varies one suspected cause around the default run") in _prose(
        "scale.md")


def _files(stage):
    """The staged files outside the copy of the book's prose (book/)."""
    return sorted(str(p.relative_to(stage)) for p in stage.rglob("*")
                  if p.is_file() and p.relative_to(stage).parts[0] != "book")


def test_stage_book_copies_the_pages_and_sources_and_publishes_no_absolute_path(tmp_path, monkeypatch):
    from clipalign_utils.steps.interpolation import placeholder

    # page 11's placeholder draws its recorded figures (a second of matplotlib): its own tests see to them
    monkeypatch.setattr(placeholder, "text", lambda folder=None: "# 11. Interpolation\n")
    folder = _folder_of_runs(tmp_path)
    stage = book.stage_book(folder, ".book-building")
    assert stage == folder / ".book-building"
    assert _files(stage) == [
        "_config.yml", "_generated/published.md", "_generated/run.md", "_generated/world_examples.png", "_toc.yml",
        *[f"notebooks/{name}.ipynb" for name in sorted(PER_RUN + [SYNTHESIS, "06_sweep", "09_quality_experiment"])],
        "notebooks/10_real_clip.md", "notebooks/11_interpolation.md"]
    assert (stage / "_config.yml").read_bytes() == (REPO_ROOT / "_config.yml").read_bytes()
    assert (stage / "book" / "intro.md").read_bytes() == (REPO_ROOT / "book" / "intro.md").read_bytes()
    # the pages the intro shows: the first run's, the folder's synthesis; its training pairs' figure
    assert (stage / "_generated" / "world_examples.png").read_bytes() == b"png of tiny-seed2"
    page = json.loads((stage / "notebooks" / "02_iqa_alignment.ipynb").read_text())
    assert page["cells"][1]["outputs"][0]["text"] == "read default/tiny-seed2/metrics/iqa.csv\n"
    assert "remove-cell" in page["cells"][0]["metadata"]["tags"]
    synthesis = json.loads((stage / "notebooks" / f"{SYNTHESIS}.ipynb").read_text())
    assert synthesis["cells"][1]["outputs"][0]["text"] == "read default/metrics/iqa.csv\n"
    # no file of the staged book names the build machine's folders
    for path in stage.rglob("*"):
        if path.is_file() and path.suffix in (".ipynb", ".md", ".yml"):
            assert str(tmp_path) not in path.read_text(), path
    chapters = [c["file"] for part in __import__("yaml").safe_load((stage / "_toc.yml").read_text())["parts"]
                if part.get("caption") == book.NOTEBOOK_PART for c in part["chapters"]]
    assert chapters == [f"notebooks/{n}" for n in ["01_train", "02_iqa_alignment", "03_shape_texture_bias",
                                                    "04_noise_robustness", SYNTHESIS, "06_sweep", "07_similarity",
                                                    "08_saliency", "09_quality_experiment", "10_real_clip",
                                                    "11_interpolation"]]
    # the recorded pages: the shipped page under its provenance note; a placeholder: its text and a Colab line
    sweep = json.loads((stage / "notebooks" / "06_sweep.ipynb").read_text())
    assert sweep["cells"][1]["source"] == recorded.provenance("06_sweep")
    url, tag = book.repository.read_setting(REPO_ROOT)
    assert (stage / "notebooks" / "10_real_clip.md").read_text().endswith(
        f"\n\n[Open this page's notebook in Colab]({book.repository.colab_url(url, tag, '10_real_clip')}) "
        f"(release `{tag}`).\n")
    assert (stage / "_generated" / "run.md").read_text() == book._run_summary(
        folder, *book._notebook_sources(folder), ["06_sweep", "09_quality_experiment"], ["10_real_clip",
                                                                                         "11_interpolation"])
    assert "page 6 shows the one recorded in `book/recorded/06_sweep/`" in (stage / "_generated" / "run.md").read_text()
    assert (stage / "_generated" / "published.md").read_text() == book._published_page()
    assert book.repository.pages_url(url) in book._published_page() and f"`{tag}`" in book._published_page()
    # staged again: the previous staging is replaced whole
    (stage / "stray").write_text("x")
    book.stage_book(folder, ".book-building")
    assert not (stage / "stray").exists()


def test_stage_book_of_a_run_trained_elsewhere_writes_page_1_and_the_embedded_worlds_figure(tmp_path, monkeypatch):
    """A streamed trajectory: page 1 is Markdown (paths made relative), the world chapter's figure and caption
    are the embedded world's, in the staged chapter only."""
    from clipalign_utils import checkpoints
    from clipalign_utils.plots import common
    from clipalign_utils.steps.train import page

    run = tmp_path / "traj"
    for name in PER_RUN[1:] + [SYNTHESIS]:
        _nb(run / "notebooks" / f"{name}.ipynb", 1.0, run)
    (run / "source.json").write_text(json.dumps({"source": "hf://org/model", "checkpoints": []}))
    monkeypatch.setattr(page, "trained_elsewhere_page", lambda run_dir: f"# 1. Training\n\nfrom {run_dir}/x\n")
    monkeypatch.setattr(page, "world_sample_figure", lambda params: ("figure", params["seed"]))
    monkeypatch.setattr(common, "png_bytes", lambda figure: b"embedded world")
    monkeypatch.setattr(checkpoints, "run_files", lambda run_dir, model=None: ([1, 2, 3], {}, "m", True))
    stage = book.stage_book(run)
    assert (stage / "notebooks" / "01_train.md").read_text().startswith("# 1. Training\n\nfrom traj/x\n\n[Open")
    assert not (stage / "notebooks" / "01_train.ipynb").exists()
    assert (stage / "_generated" / "world_examples.png").read_bytes() == b"embedded world"
    chapter = (REPO_ROOT / "book" / "world.md").read_text()
    assert book.WORLD_CAPTION in chapter  # the repository's chapter untouched; the staged one recaptioned
    assert (stage / "book" / "world.md").read_text() == chapter.replace(book.WORLD_CAPTION, (
        "Pairs of the embedded world the evaluation sets are drawn from (this run was trained elsewhere, on data "
        "of its own)."))
    assert "| checkpoints | 3 |" in (stage / "_generated" / "run.md").read_text()
    assert "notebooks/01_train" in (stage / "_toc.yml").read_text()


def test_the_world_figure_of_a_chapter_without_its_caption_is_refused(tmp_path, monkeypatch):
    from clipalign_utils.plots import common
    from clipalign_utils.steps.train import page

    monkeypatch.setattr(page, "world_sample_figure", lambda params: None)
    monkeypatch.setattr(common, "png_bytes", lambda figure: b"png")
    chapter = tmp_path / "world.md"
    chapter.write_text("another caption")
    with pytest.raises(BookBuildFailed, match=rf"^{chapter} no longer captions its figure"):
        book._embedded_world_figure(tmp_path, tmp_path / "w.png", chapter)
    assert chapter.read_text() == "another caption"


def test_a_toc_without_the_notebook_part_is_refused(tmp_path, monkeypatch):
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: intro\nparts:\n- caption: Other\n  chapters: []\n")
    monkeypatch.setattr(book, "REPO_ROOT", tmp_path)
    with pytest.raises(BookBuildFailed, match=re.escape(f"_toc.yml has no part captioned '{book.NOTEBOOK_PART}'")):
        book.toc(["01_train"])


def test_a_missing_checkout_is_refused_naming_the_packages_repository(tmp_path, monkeypatch):
    import importlib.metadata

    class Metadata:
        def get_all(self, name):
            return ["Homepage, https://example.org", "Repository, https://github.com/o/clipalign"]

    monkeypatch.setattr(book, "REPO_ROOT", tmp_path)
    monkeypatch.setattr(importlib.metadata, "metadata", lambda name: Metadata())
    with pytest.raises(book.ParameterError, match=r"checkout's _config.yml, _toc.yml, book, pyproject.toml, .*: give "
                                                  r"--no-book to run without it, or clone https://github.com/o/"
                                                  r"clipalign and run clipalign run from"):
        book.check_sources("run")

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "metadata", not_installed)
    with pytest.raises(book.ParameterError, match=r"does not hold: clone the project's repository and run clipalign "
                                                  r"book from that checkout$"):
        book.check_sources("book")


def test_stage_book_of_a_sweep_shows_its_own_page_6_and_its_linked_run_by_a_relative_path(tmp_path, monkeypatch):
    """The full preset's drivers sweep links its base run from beside it: that run's pages name the folder they
    ran in, published relative; page 6 is the sweep's own, never the recorded one."""
    from clipalign_utils.steps.interpolation import placeholder

    monkeypatch.setattr(placeholder, "text", lambda folder=None: "# 11. Interpolation\n")
    base = _run(tmp_path / "full" / "tiny-seed0", 0)
    _nb(base / "notebooks" / f"{SYNTHESIS}.ipynb", 1.0, base)
    sweep = tmp_path / "full" / "drivers"
    _sweep(sweep, ["lr-a"])
    (sweep / "base").symlink_to(base)
    (sweep / "sweep.json").write_text(json.dumps({"preset": "smoke", "fixed": {}, "swept": {"lr": ["a"]},
                                                  "one_at_a_time": True, "runs": [{"name": "base"}, {"name": "lr-a"}]}))
    stage = book.stage_book(sweep)
    page = json.loads((stage / "notebooks" / "02_iqa_alignment.ipynb").read_text())
    assert page["cells"][1]["outputs"][0]["text"] == "read tiny-seed0/metrics/iqa.csv\n"
    sweep_page = json.loads((stage / "notebooks" / "06_sweep.ipynb").read_text())
    assert [cell.get("id") for cell in sweep_page["cells"]] == [None, None]  # no provenance note: its own page
    assert sweep_page["cells"][1]["outputs"][0]["text"] == "read drivers/metrics/iqa.csv\n"
    run_md = (stage / "_generated" / "run.md").read_text()
    assert run_md.startswith("Pages 1–5 and 7–8 show the run `base`, the first of this sweep's runs: `base`, "
                             "`lr-a`.\n\nPage 6 compares the runs of the sweep in this directory.\n\nThis build ran no "
                             "experiment: page 9 shows the one recorded")
    for path in stage.rglob("*"):
        if path.is_file() and path.suffix in (".ipynb", ".md", ".yml"):
            assert str(tmp_path) not in path.read_text(), path


def test_a_folder_of_runs_intro_lists_the_runs_its_runs_table_lists(tmp_path):
    """The intro's run list is RunDir.runs, as the runs table's: a run trained elsewhere (checkpoints, no
    train_params.json), which the table and the synthesis hold, had been left out of the sentence."""
    folder = _folder_of_runs(tmp_path)
    elsewhere = folder / "tiny-seed5"
    (elsewhere / "checkpoints").mkdir(parents=True)
    (elsewhere / "checkpoints" / "epoch_1.pt").write_bytes(b"")
    table = book._runs_table(folder)
    assert [row.split("`")[1] for row in table[2:-1]] == ["tiny-seed2", "tiny-seed5", "tiny-seed10"]
    assert "synthesises all runs of this directory: `tiny-seed2`, `tiny-seed5`, `tiny-seed10`." in _summary(folder)


def test_the_intro_table_leaves_out_of_a_page_what_its_own_table_leaves_out(tmp_path):
    """A reader: the default book's introduction listed `seed=0` for the synthesis of seeds 0, 1 and 2, whose page
    leaves the seed out ("each run's own: the introduction lists them run by run")."""
    folder = _folder_of_runs(tmp_path)
    (folder / "record.json").write_text(json.dumps({"steps": {"tradeoff": {"preset": "default", "parameters": {
        "run_dir": str(folder), "run_dirs": None, "seed": 0, "n_perm": 10000}, "sources": {}}}}))
    row, = [line for line in _summary(folder).splitlines() if line.startswith(f"| `{SYNTHESIS}` |")]
    assert row == f"| `{SYNTHESIS}` | `preset=default`, `n_perm=10000`; executed in 3 s |"


def test_the_intro_table_of_a_streamed_run_holds_page_10s_row(tmp_path):
    """A reader: `clipalign book` on a streamed trajectory stopped with "unknown step '10_real_clip'", the page of no
    step taken for one while the introduction asked what its table leaves out."""
    run = _run(tmp_path / "r", 0)
    (run / "train_params.json").unlink()  # trained elsewhere: its checkpoints streamed from a source
    (run / "source.json").write_text(json.dumps({"source": "elsewhere", "model": "RN50", "checkpoints": []}))
    _nb(run / "notebooks" / "10_real_clip.ipynb", 2.0, run)
    _nb(run / "notebooks" / f"{SYNTHESIS}.ipynb", 1.0, run)
    (run / "record.json").write_text(json.dumps({"steps": {"10_real_clip": {
        "preset": "default", "parameters": {"run_dir": str(run)}, "sources": {}}}}))
    assert "| `10_real_clip` | `preset=default`; executed in 2 s |" in _summary(run)


def test_a_dataset_folder_a_page_was_given_is_shown_by_its_name_in_the_staged_notebooks(tmp_path):
    """A reader: the downloadable notebooks of a book on TID2013 held the absolute folder the page read
    (iqa_root="/data/…/tid2013" in its injected cell and papermill's record), which each page's table shows as
    …/tid2013."""
    run = _run(tmp_path / "r", 0)
    page = run / "notebooks" / "02_iqa_alignment.ipynb"
    notebook = json.loads(page.read_text())
    root = str(tmp_path / "data" / "tid2013")
    notebook["cells"][0]["source"] += f'\niqa_root = "{root}"'
    notebook["metadata"]["papermill"]["parameters"]["iqa_root"] = root
    page.write_text(json.dumps(notebook))
    _nb(run / "notebooks" / f"{SYNTHESIS}.ipynb", 1.0, run)
    staged = (book.stage_book(run, ".book-building") / "notebooks" / "02_iqa_alignment.ipynb").read_text()
    assert str(tmp_path) not in staged and 'iqa_root = \\"…/tid2013\\"' in staged
