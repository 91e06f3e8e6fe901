"""The book built from a smoke run: every notebook page loads in headless Chromium with no
console errors, and its figures are present and non-empty."""
from __future__ import annotations

import json
import re

import pytest
from browser import CHROMIUM, check_pages

from clipalign_utils import repository
from clipalign_utils.orchestration.pipeline import STEPS
from clipalign_utils.registry import REPO_ROOT


def test_book_has_every_page(smoke_pipeline):
    html = smoke_pipeline / "book" / "_build" / "html"
    assert (html / "index.html").exists()
    for name in STEPS.values():
        page = (html / "notebooks" / f"{name}.html").read_text()
        assert repository.colab_url(*repository.read_setting(), name) in page  # at the release tag
    assert "{include}" not in (html / "index.html").read_text()
    # The registry's pages, the two newer steps included, are in the staged table of contents.
    for name in ("07_similarity", "08_saliency"):
        assert (html / "notebooks" / f"{name}.html").exists()
        assert f"notebooks/{name}" in (smoke_pipeline / "book" / "_toc.yml").read_text()
    assert "synthetic" in (html / "notebooks" / "08_saliency.html").read_text()
    # A run without the optional interpolation step shows its recorded results (chapter 11).
    interpolation = (html / "notebooks" / "11_interpolation.html").read_text()
    assert "This build did not run the step" in interpolation
    for name in ("10_real_clip", "11_interpolation"):  # placeholders: a Markdown page, the Colab link in its text
        assert repository.colab_url(*repository.read_setting(), name) in (html / "notebooks" / f"{name}.html").read_text()
    recorded_worlds = json.loads((REPO_ROOT / "book" / "recorded" / "interpolation" / "recorded.json").read_text())
    figures = re.findall(r"<img [^>]*src=\"\.\./_images/(interpolation_[^\"]+\.png)\"", interpolation)
    assert len(figures) == len(recorded_worlds["worlds"]) >= 1  # each recorded world's measures against α
    assert all((html / "_images" / figure).stat().st_size > 10_000 for figure in figures)
    # A run without a sweep or the experiment shows the ones recorded in the repository (chapters 6 and 9),
    # their figures included, under a note naming the commit and commands.
    for name, kind in (("06_sweep", "sweep"), ("09_quality_experiment", "experiment")):
        page = (html / "notebooks" / f"{name}.html").read_text()
        assert f"This build ran no {kind}, so this page is the one recorded in the repository" in page, name
        assert f"book/recorded/{name}/" in page and "clipalign " in page
        assert len(re.findall(r"<img [^>]*src=\"[^\"]+\.png\"", page)) >= 2, name
        assert f"notebooks/{name}" in (smoke_pipeline / "book" / "_toc.yml").read_text()
    summary = (smoke_pipeline / "book" / "_generated" / "run.md").read_text()
    # how to make the run again: one run of the preset, its seed (the intro had the default command, always)
    assert f"bash scripts/setup.sh && .venv/bin/clipalign run --preset smoke -p seed=0 --out runs/{smoke_pipeline.name}\n" \
        in summary
    assert "page 6 shows the one recorded in `book/recorded/06_sweep/`" in summary
    assert "page 9 shows the one recorded in `book/recorded/09_quality_experiment/`" in summary
    # pages 10 and 11, from no run of this build, are named as such
    assert "This build produced no page 10, a public CLIP trajectory analysed from its source" in summary
    assert "; no page 11, weight interpolation between an early and a late checkpoint" in summary
    # … and chapter 10, with the command for the paper's Fig. 1 on a public trajectory, nothing computed.
    real_clip = re.sub(r"<[^>]+>", "", (html / "notebooks" / "10_real_clip.html").read_text())  # text, not markup
    assert "holds no such run" in real_clip
    assert "--checkpoints laion-scaling:Model-B-32_Data-400M_Samples-13B_lr-1e-3_bs-86k" in real_clip
    assert "epochs 1–10 of 1–32" in real_clip  # the early window, from the trajectory's own checkpoints
    # Built in .book-building and moved into place: nothing in it names the folder it was built in.
    assert not [p for p in html.rglob("*.html") if ".book-building" in p.read_text(errors="replace")]
    assert not [p.name for p in smoke_pipeline.iterdir() if p.name.startswith(".book")]


def test_a_stopped_or_failed_build_never_leaves_a_part_built_book(smoke_pipeline, tmp_path, monkeypatch):
    import shutil
    import subprocess
    from pathlib import Path
    from types import SimpleNamespace

    from clipalign_utils.layout import RunDir
    from clipalign_utils.orchestration import book

    run_dir = tmp_path / "smoke"
    shutil.copytree(smoke_pipeline, run_dir, ignore=shutil.ignore_patterns("checkpoints", "cache"))
    index = run_dir / "book" / "_build" / "html" / "index.html"
    previous = index.read_bytes()

    def building(text, returncode):
        def run(command, **kwargs):  # jupyter-book build STAGE …: it has written a page, then ends
            html = Path(command[command.index("build") + 1]) / "_build" / "html"
            html.mkdir(parents=True)
            (html / "index.html").write_text(text)
            if returncode is None:
                raise KeyboardInterrupt
            return subprocess.CompletedProcess(command, returncode, "", "WARNING: a page's reference\n")
        monkeypatch.setattr(book, "subprocess", SimpleNamespace(run=run))

    building("half", None)  # stopped part-way: the book in place is the previous one, whole
    with pytest.raises(KeyboardInterrupt):
        book.build_book(run_dir)
    assert index.read_bytes() == previous
    building("half", 1)  # failed: kept apart for its log; the message names it and the book in place
    with pytest.raises(book.BookBuildFailed, match=r"exit 1\); see .*/\.book-failed/build\.log; .*/book is the previous build"):
        book.build_book(run_dir)
    assert index.read_bytes() == previous and not (run_dir / ".book-building").exists()
    assert "a page's reference" in (run_dir / ".book-failed" / "build.log").read_text()
    assert RunDir(run_dir).kind == "run"  # the book's folders are never runs
    building("whole", 0)  # built: replaces the book whole, and the failed one goes
    assert book.build_book(run_dir) == run_dir.resolve() / "book" / "_build" / "html"
    assert index.read_text() == "whole"
    assert not [p.name for p in run_dir.iterdir() if p.name.startswith(".book")]


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (scripts/setup.sh installs it)")
def test_notebook_pages_render_in_chromium(smoke_pipeline):
    html = smoke_pipeline / "book" / "_build" / "html"
    check_pages([html / "notebooks" / f"{name}.html" for name in STEPS.values()])


def test_inner_pages_skip_the_books_own_staging_folder(tmp_path):
    """A page in one of the book's own folders (the book, one being built, a failed one) is a copy."""
    from clipalign_utils.orchestration.book import _inner_pages

    for folder in ("book", ".book-building", ".book-failed", ".book-replaced", "quality", "drivers"):
        (tmp_path / folder / "notebooks").mkdir(parents=True)
        (tmp_path / folder / "notebooks" / "09_quality_experiment.ipynb").write_text("{}")
    assert _inner_pages(tmp_path, "09_quality_experiment") == [
        tmp_path / "drivers" / "notebooks" / "09_quality_experiment.ipynb",
        tmp_path / "quality" / "notebooks" / "09_quality_experiment.ipynb"]


def test_the_books_parameter_rows_come_from_the_runs_record_not_the_notebook(tmp_path):
    """The introduction's row per page lists the values the run's record.json holds for that step (the
    parameters its notebook declares), whatever the executed notebook's metadata says."""
    from clipalign_utils import config
    from clipalign_utils.orchestration.book import _recorded_parameters

    params = dict(config.resolve("smoke"), distance="cosine")
    params.pop("preset")
    entry = {"preset": "smoke", "parameters": params, "sources": {}}
    (tmp_path / "notebooks").mkdir()
    notebook = tmp_path / "notebooks" / "02_iqa_alignment.ipynb"
    notebook.write_text(json.dumps({"metadata": {"papermill": {"parameters": {"distance": "euclidean"}}}}))
    (tmp_path / "record.json").write_text(json.dumps({"preset": "smoke", "steps": {"iqa": entry}}))
    shown = _recorded_parameters(notebook, "02_iqa_alignment")
    assert shown["preset"] == "smoke" and shown["distance"] == "cosine"
    assert "noise_dataset" not in shown and "run_dir" not in shown  # not declared by the IQA page
    assert _recorded_parameters(tmp_path / "other" / "notebooks" / "x.ipynb", "02_iqa_alignment") == {}


def test_a_page_the_tables_no_longer_match_is_not_built(smoke_pipeline, tmp_path):
    """A page re-run by hand with another distance, its notebook written elsewhere (papermill … o.ipynb): the
    tables and record.json say cosine, the run's executed page normalized euclidean. The book would contradict
    itself; it names the page and the command that executes it into the run (an audit built such a book)."""
    import shutil

    from clipalign_utils.orchestration.book import BookBuildFailed, stage_book

    run_dir = tmp_path / "smoke"
    shutil.copytree(smoke_pipeline, run_dir, ignore=shutil.ignore_patterns("checkpoints", "cache", "book"))
    stage_book(run_dir)  # as the command left it: every page matches its record
    path = run_dir / "record.json"
    kept = path.read_text()
    changed = json.loads(kept)
    assert changed["steps"]["iqa"]["parameters"]["distance"] == "normalized_euclidean"
    changed["steps"]["iqa"]["parameters"]["distance"] = "cosine"
    path.write_text(json.dumps(changed))
    with pytest.raises(BookBuildFailed, match=rf"^page 02_iqa_alignment in {re.escape(str(run_dir.resolve()))} was "
                                              rf"executed with other parameters .*: run clipalign run --out "
                                              rf"{re.escape(str(run_dir.resolve()))} --only iqa to execute it"):
        stage_book(run_dir)
    path.write_text(kept)
    assert (stage_book(run_dir) / "notebooks" / "02_iqa_alignment.ipynb").exists()


def test_a_page_made_from_tables_that_changed_since_is_not_built(smoke_pipeline, tmp_path):
    """The synthesis records the bytes of each table it read (its record.json entry's ``tables_read``); a run's
    iqa re-run afterwards with another distance (``--only iqa``, which leaves the synthesis as it was) would
    have the book show page 2 at one distance and page 5 at the other. The book names the page, the table
    and the command that executes it again; the same bytes back, it builds."""
    import hashlib
    import shutil

    from clipalign_utils.orchestration.book import BookBuildFailed, _execute_again, stage_book

    run_dir = tmp_path / "smoke"
    shutil.copytree(smoke_pipeline, run_dir, ignore=shutil.ignore_patterns("checkpoints", "cache", "book"))
    steps = json.loads((run_dir / "record.json").read_text())["steps"]
    iqa = run_dir / "metrics" / "iqa.csv"
    read = steps["tradeoff"]["tables_read"]
    assert read["metrics/iqa.csv"] == hashlib.sha256(iqa.read_bytes()).hexdigest()
    assert {"metrics/noise.csv", "metrics/shape_bias.csv"} <= set(read)
    assert not any(name.startswith("metrics/tradeoff") for name in read)  # its own tables are not inputs
    assert "tables_read" not in steps["iqa"]  # the IQA page reads no other step's table
    stage_book(run_dir)
    kept = iqa.read_bytes()
    iqa.write_bytes(kept.replace(b"normalized_euclidean", b"cosine"))
    where = re.escape(str(run_dir.resolve()))
    with pytest.raises(BookBuildFailed, match=rf"^page 05_tradeoff_synthesis in {where} was made from tables that "
                                              rf"have changed since \(metrics/iqa.csv\): run clipalign run --out "
                                              rf"{where} --only tradeoff to execute it again"):
        stage_book(run_dir)
    iqa.unlink()  # gone is changed too
    with pytest.raises(BookBuildFailed, match=r"changed since \(metrics/iqa.csv\)"):
        stage_book(run_dir)
    iqa.write_bytes(kept)
    assert (stage_book(run_dir) / "notebooks" / "05_tradeoff_synthesis.ipynb").exists()
    assert _execute_again(["06_sweep"], tmp_path) == (f"the clipalign sweep command that made {tmp_path} again "
                                                      f"(its finished runs are kept)")


def test_a_run_trained_elsewhere_gets_a_book_whose_page_1_says_so(smoke_pipeline, tmp_path):
    """open_clip_train's logs analysed in place (--only iqa,…,tradeoff), or a trajectory streamed into a folder of
    its own: no training page, no training record. The book builds (an audit found no way to one: 'lacks
    executed notebooks 01_train: run the whole pipeline', which refuses such a folder): page 1 says who
    trained it and what its params.txt says, the world chapter's figure is the embedded world's, captioned
    so; a missing analysis page names the command that runs the analyses."""
    import shutil

    import yaml

    from clipalign_utils.orchestration.book import WORLD_CAPTION, BookBuildFailed, stage_book

    run = tmp_path / "logs" / "myrun"
    shutil.copytree(smoke_pipeline, run, ignore=shutil.ignore_patterns("book", "cache", "01_train.ipynb",
                                                                       "train_params.json", "train_log.csv",
                                                                       "world_training_pairs.png"))
    (run / "params.txt").write_text("model: clipalign-tiny\nforce_image_size: 32\nlr: 0.0005\nepochs: 2\n"
                                    "train_data: /private/shards-{0000..0009}.tar\n")
    stage = stage_book(run)
    page = (stage / "notebooks" / "01_train.md").read_text()
    epochs = sorted(float(p.stem.split("_")[1]) for p in (run / "checkpoints").glob("epoch_*.pt"))
    assert page.startswith("# 1. Training\n") and "clipalign did not train this run" in page
    assert f"**{len(epochs)} checkpoints of clipalign-tiny**, at epochs {', '.join(f'{e:g}' for e in epochs)}." in page
    assert "| `lr` | `0.0005` |" in page and "/private" not in page  # what params.txt says, not its data's path
    assert "notebooks/01_train" in [c["file"] for p in yaml.safe_load((stage / "_toc.yml").read_text())["parts"]
                                    for c in p.get("chapters", [])]
    world = (stage / "book" / "world.md").read_text()
    assert WORLD_CAPTION not in world and "Pairs of the embedded world the evaluation sets are drawn from" in world
    assert (stage / "_generated" / "world_examples.png").read_bytes().startswith(b"\x89PNG")
    # a trajectory streamed into its own folder: its manifest, no checkpoints/ (measured, weights gone); the
    # source folder shown relative to the run's parent (logs/), as the runs are
    shutil.rmtree(run / "checkpoints")
    source = tmp_path / "elsewhere" / "oc"
    (run / "source.json").write_text(json.dumps({"source": str(source), "model": "clipalign-tiny", "checkpoints": [
        {"name": f"epoch_{e:g}", "epoch": e, "local": True, "source": str(source / "checkpoints" / f"epoch_{e:g}.pt")}
        for e in epochs]}))
    page = (stage_book(run) / "notebooks" / "01_train.md").read_text()
    assert "a trajectory streamed from `../elsewhere/oc`" in page and str(tmp_path) not in page
    (run / "notebooks" / "07_similarity.ipynb").unlink()
    with pytest.raises(BookBuildFailed, match=r"lacks executed notebooks 07_similarity: run its analyses first "
                                              r"\(clipalign run --out .* --only iqa,shape,noise,similarity,saliency,"
                                              r"tradeoff\)"):
        stage_book(run)


def test_the_command_to_make_a_real_data_run_again_names_what_its_pages_were_given(tmp_path):
    from clipalign_utils.orchestration.book import _reproduce_lines

    run = tmp_path / "tid"
    run.mkdir()
    (run / "train_params.json").write_text(json.dumps({"seed": 3, "model": "tiny"}))

    def entry(**given):
        return {"parameters": {k: v for k, (v, _) in given.items()}, "sources": {k: w for k, (_, w) in given.items()}}

    (run / "record.json").write_text(json.dumps({"preset": "default", "steps": {
        # a value the training page was handed but does not read (an audit: `-p distance=cosine` showed here)
        "train": entry(seed=(3, "given"), distance=("cosine", "given")),
        "iqa": entry(iqa_dataset=("tid2013", "given"), iqa_root=("/data/tid2013", "record.json"),
                     device=("cpu", "given"), n_boot=(200, "preset default"), distance=("euclidean", "given")),
        "noise": entry(sigmas=([0.1, 0.2], "given")),
        "similarity": entry(distance=("cosine", "given")),
        "interpolation": entry(alphas=([0.5], "given"))}}))
    lines = _reproduce_lines(run, run)
    assert lines[3:6] == [
        "bash scripts/setup.sh && .venv/bin/clipalign run --preset default -p seed=3 -p iqa_dataset=tid2013 "
        "-p iqa_root=PATH -p distance=euclidean -p sigmas=0.1,0.2 --out runs/tid",
        ".venv/bin/clipalign run --out runs/tid --only interpolation -p alphas=0.5", "```"]
    assert lines[-1].startswith("(each `PATH` is your copy of that dataset")
    assert "the pages ran with different values of `distance`: the command gives the first page's" in lines[-1]


def _folder_of_runs(folder, trained: dict, elsewhere: list) -> None:
    """A folder of runs (its runs.json, preset default): the runs clipalign trained (name: seed, a train_params.json)
    and open_clip_train's logs put beside them (a params.txt without a seed, no training record of ours)."""
    folder.mkdir()
    (folder / "runs.json").write_text(json.dumps({"preset": "default", "runs": list(trained)}))
    for name, seed in trained.items():
        (folder / name / "checkpoints").mkdir(parents=True)
        (folder / name / "train_params.json").write_text(json.dumps({"seed": seed, "model": "tiny"}))
    for name in elsewhere:
        (folder / name / "checkpoints").mkdir(parents=True)
        (folder / name / "params.txt").write_text("model: clipalign-tiny\nforce_image_size: 32\n")


def test_the_command_to_make_a_folder_again_makes_only_the_runs_clipalign_trained(tmp_path):
    """An audit: a folder of runs holding open_clip_train's logs too had `--seeds 2 None 10` in its command (run
    identities without a seed); a first run trained elsewhere made it `--checkpoints SOURCE`, one trajectory."""
    from clipalign_utils.orchestration.book import _reproduce_lines

    folder = tmp_path / "mixed"
    _folder_of_runs(folder, {"tiny-seed2": 2, "tiny-seed10": 10}, ["logs"])
    for trained in ("tiny-seed2", "logs"):  # the book's pages 1–4 from either
        assert _reproduce_lines(folder, folder / trained)[3:] == [
            "bash scripts/setup.sh && .venv/bin/clipalign run --preset default --seeds 2 10 --out runs/mixed", "```",
            "", "(the command does not make the run `logs`: it was trained elsewhere, and its page 1 names its "
                "source.)"]
    _folder_of_runs(tmp_path / "two", {"tiny-seed0": 0, "tiny-seed1": 1, "tiny-seed2": 2}, ["a-logs", "b-logs"])
    assert _reproduce_lines(tmp_path / "two", tmp_path / "two" / "tiny-seed0")[3:] == [
        "bash scripts/setup.sh && .venv/bin/clipalign run --preset default --out runs/two", "```", "",
        "(the command does not make the runs `a-logs` and `b-logs`: they were trained elsewhere, and each one's "
        "page 1 names its source.)"]


def test_the_command_to_make_a_folder_of_runs_all_trained_elsewhere_again_analyses_them_where_they_lie(tmp_path):
    """No run of the folder is clipalign's: no seed makes one, and each streamed with --checkpoints would be a page
    of the folder's book, not one of its runs (none to synthesise). The command analyses the logs in place."""
    from clipalign_utils.orchestration.book import _reproduce_lines

    folder = tmp_path / "logs"
    _folder_of_runs(folder, {}, ["a", "b", "c"])
    assert _reproduce_lines(folder, folder / "a")[3:] == [
        "bash scripts/setup.sh && .venv/bin/clipalign run --preset default "
        "--only iqa,shape,noise,similarity,saliency,tradeoff --out runs/logs", "```", "",
        "(`runs/logs` must hold the runs `a`, `b` and `c` first: they were trained elsewhere, and each one's page 1 "
        "names its source.)"]


def test_the_command_to_make_a_streamed_trajectory_again_analyses_it_with_the_steps_it_ran(tmp_path):
    """An audit: a trajectory streamed with `--only iqa,shape,tradeoff` was made again by `--checkpoints SOURCE`
    alone (every analysis and the synthesis), and "`SOURCE` is the trajectory page 1 names" (page 1 names a
    folder shortened, or a URL)."""
    from clipalign_utils.orchestration.book import _reproduce_lines

    run = tmp_path / "rn50"
    run.mkdir()
    given = {"parameters": {"model": "RN50", "iqa_root": "/data/tid2013"},
             "sources": {"model": "given", "iqa_root": "given"}}
    # the record's own order is not the registry's
    (run / "record.json").write_text(json.dumps({"preset": "default", "steps": {
        "tradeoff": given, "shape": given, "iqa": given}}))
    (run / "source.json").write_text(json.dumps({"source": "/home/me/oc/checkpoints", "model": "RN50",
                                                 "architecture": None, "checkpoints": []}))
    assert _reproduce_lines(run, run)[3:] == [
        "bash scripts/setup.sh && .venv/bin/clipalign run --preset default --checkpoints SOURCE "
        "--only iqa,shape,tradeoff -p model=RN50 -p iqa_root=PATH --out runs/rn50", "```", "",
        "(each `PATH` is your copy of that dataset, in its official layout, which `clipalign fetch` gets; "
        "`SOURCE` is your copy of the checkpoint folder page 1 names.)"]
    for source, named in (("laion-scaling:Model-B-32_Data-400M_Samples-13B_lr-1e-3_bs-86k",
                           "the `laion-scaling:` run page 1 names"),
                          ("https://example.org/run/epoch_{epoch}.pt", "the URL template page 1 names")):
        (run / "source.json").write_text(json.dumps({"source": source, "model": "RN50", "checkpoints": []}))
        assert _reproduce_lines(run, run)[-1].endswith(f"`SOURCE` is {named}.)")


def _sweep_folder(folder, preset: str, swept: dict, fixed: dict, one_at_a_time: bool) -> None:
    """A sweep's folder as clipalign sweep records it (sweep.json: each swept value as format_value writes it, the
    fixed ones as one -p value), with its first run (the one a sweep's book shows on its step pages)."""
    folder.mkdir(parents=True)
    (folder / "sweep.json").write_text(json.dumps({"preset": preset, "fixed": fixed, "swept": swept,
                                                   "one_at_a_time": one_at_a_time, "runs": [{"name": "base"}]}))
    (folder / "base" / "checkpoints").mkdir(parents=True)
    (folder / "base" / "train_params.json").write_text(json.dumps({"seed": 0, "model": "tiny"}))


def test_the_command_to_make_a_sweep_again_is_the_sweep_its_record_plans(tmp_path):
    """An audit: a sweep's book (clipalign sweep -p texture_correlation=0.5,0.8) was made again by `clipalign run
    --seeds 0 -p texture_correlation=0.5`, one run of it and no comparison."""
    from clipalign_utils.orchestration.book import _reproduce_lines

    folder = tmp_path / "sweep"
    _sweep_folder(folder, "smoke", {"texture_correlation": ["0.5", "0.8"]}, {}, False)
    assert _reproduce_lines(folder, folder / "base")[3:] == [
        "bash scripts/setup.sh && .venv/bin/clipalign sweep --preset smoke -p texture_correlation=0.5,0.8 "
        "--out runs/sweep", "```"]
    # a grid over two parameters, in its order (the first is outermost), a list's values separated by ';'
    folder = tmp_path / "grid"
    _sweep_folder(folder, "default", {"model": ["tiny", "small"], "sigmas": ["0.01,0.02", "0.1,0.2"]},
                  {"epochs": "3", "iqa_root": "/data/tid2013"}, False)
    assert _reproduce_lines(folder, folder / "base")[3:] == [
        "bash scripts/setup.sh && .venv/bin/clipalign sweep --preset default -p model=tiny,small "
        "-p 'sigmas=0.01,0.02;0.1,0.2' -p epochs=3 -p iqa_root=PATH --out runs/grid", "```", "",
        "(each `PATH` is your copy of that dataset, in its official layout, which `clipalign fetch` gets.)"]
    folder = tmp_path / "alone"
    _sweep_folder(folder, "smoke", {"texture_correlation": ["0.5", "0.95"], "fresh_data": ["false", "true"]}, {},
                  True)
    assert _reproduce_lines(folder, folder / "base")[3] == (
        "bash scripts/setup.sh && .venv/bin/clipalign sweep --preset smoke --one-at-a-time "
        "-p texture_correlation=0.5,0.95 -p fresh_data=false,true --out runs/alone")


def test_the_command_to_make_a_full_runs_drivers_sweep_again_is_the_full_run(tmp_path):
    """The drivers sweep inside a folder of clipalign run --preset full (its book: clipalign book OUT/drivers) is
    made by that command, which links the folder's seed-0 run as the sweep's base, not by a sweep of its own."""
    from clipalign_utils.orchestration.book import _reproduce_lines

    full = tmp_path / "full"
    full.mkdir()
    (full / "runs.json").write_text(json.dumps({"preset": "full", "runs": ["tiny-seed0"]}))
    (full / "tiny-seed0" / "checkpoints").mkdir(parents=True)
    (full / "tiny-seed0" / "train_params.json").write_text(json.dumps({"seed": 0, "model": "tiny"}))
    _sweep_folder(full / "drivers", "full", {"epochs": ["12", "24"]}, {}, True)
    assert _reproduce_lines(full / "drivers", full / "drivers" / "base")[3:] == [
        "bash scripts/setup.sh && .venv/bin/clipalign run --preset full --seeds 0 --scales tiny --out runs/full",
        ".venv/bin/clipalign book runs/full/drivers", "```"]


def test_the_command_to_make_an_experiment_again_is_the_experiment_with_the_values_it_was_given(tmp_path):
    """An experiment's book was made again by `clipalign run` on the first run of its first sweep. Its record keeps
    each sweep's -p values: the experiment's fixed ones and its own are not options; what the command gave is."""
    from clipalign_utils.config import EXPERIMENT_FIXED, EXPERIMENTS
    from clipalign_utils.orchestration.book import _reproduce_lines

    folder = tmp_path / "quality"
    folder.mkdir()
    given = {"epochs": "3", "iqa_root": "/data/tid2013"}
    sweeps = {sweep: {**EXPERIMENT_FIXED["quality"], **values, **given}
              for sweep, values in EXPERIMENTS["quality"].items() if sweep in ("partial", "variation")}
    (folder / "experiment.json").write_text(json.dumps({"experiment": "quality", "preset": "default",
                                                        "sweeps": sweeps}))
    first = folder / "partial" / "quality_variation-0.3__seed-0"
    assert _reproduce_lines(folder, first)[3:] == [
        "bash scripts/setup.sh && .venv/bin/clipalign experiment quality --preset default -p epochs=3 "
        "-p iqa_root=PATH --only-sweeps variation,partial --out runs/quality", "```", "",
        "(each `PATH` is your copy of that dataset, in its official layout, which `clipalign fetch` gets.)"]
    every = {sweep: {**EXPERIMENT_FIXED["quality"], **values} for sweep, values in EXPERIMENTS["quality"].items()}
    (folder / "experiment.json").write_text(json.dumps({"experiment": "quality", "preset": "full", "sweeps": every}))
    assert _reproduce_lines(folder, first)[3:] == [
        "bash scripts/setup.sh && .venv/bin/clipalign experiment quality --preset full --out runs/quality", "```"]


def test_the_intro_says_what_every_build_does_not_what_the_default_one_does():
    """An audit: a streamed trajectory's book said the book "trains small open_clip models from scratch" and
    that "the table below lists the runs behind this build" (a build of one run has no such table)."""
    intro = " ".join((REPO_ROOT / "book" / "intro.md").read_text().split())
    assert ("This book re-runs that study in the open. By default it trains small open_clip models from scratch, "
            "keeping checkpoints densely early in training (a build may instead measure a trajectory trained "
            "elsewhere, `clipalign run --checkpoints`); it measures every checkpoint") in intro
    assert ("and the synthesis with its verdict table, executed by the pipeline for this book (page 1 of a run "
            "clipalign did not train says so and lists its checkpoints instead). The default build trains the "
            "world once per seed: the step pages") in intro
    assert ("each seed's own verdict (a build of one run judges them on that run's curves). *The run behind these "
            "pages*, below, describes the runs behind this build. The seeds vary training only") in intro


def test_the_synthesis_page_says_what_the_default_build_is_not_what_this_one_is():
    """An audit: page 5 of a streamed trajectory's book said "The book's own run is several seeds of the default
    world"."""
    synthesis = (REPO_ROOT / "notebooks" / "05_tradeoff_synthesis.py").read_text()
    assert ("\n# What this page reads is said below its first cell (the default build: several seeds of the default "
            "world).\n") in synthesis and "say(results.runs_read_sentence(run_dirs))" in synthesis


def test_the_intro_table_shows_what_a_page_read_and_no_dataset_folder_in_full():
    from clipalign_utils.orchestration.book import _shown_parameters

    recorded = {"preset": "default", "iqa_dataset": "kadid10k", "iqa_root": "/home/me/data/kadid10k",
                "iqa_levels": [1, 2, 3, 4, 5], "reference_observer": "haarpsi", "distance": "cosine"}
    assert _shown_parameters("02_iqa_alignment", recorded) == {
        "preset": "default", "iqa_dataset": "kadid10k", "iqa_root": "…/kadid10k", "distance": "cosine"}
    embedded = {**recorded, "iqa_dataset": "embedded", "iqa_root": ""}
    assert _shown_parameters("02_iqa_alignment", embedded) == {k: v for k, v in embedded.items() if k != "iqa_root"}
    # an empty value (no folder, a real set's default split) is left out, not shown as `similarity_split=`
    similarity = {"similarity_dataset": "nights", "similarity_root": "/data/nights", "similarity_split": "",
                  "similarity_protocol": "all"}
    assert _shown_parameters("07_similarity", similarity) == {
        "similarity_dataset": "nights", "similarity_root": "…/nights", "similarity_protocol": "all"}
    assert _shown_parameters("06_sweep", {"preset": "default"}) == {"preset": "default"}


def test_one_book_build_of_a_folder_at_a_time(tmp_path):
    """An audit built a folder's book twice at once: the second removed the first's staging folder and both
    failed (one with a traceback). The second is told, and the first's build is left alone."""
    import fcntl
    import os

    from clipalign_utils.orchestration.book import BookBuildFailed, build_book

    (tmp_path / ".book-building").mkdir()  # the first command's staging folder
    first = os.open(tmp_path, os.O_RDONLY)  # what the first command holds: the folder's own lock
    try:
        fcntl.flock(first, fcntl.LOCK_EX)
        with pytest.raises(BookBuildFailed, match=rf"^another command is building the book of {tmp_path} now; wait"):
            build_book(tmp_path)
    finally:
        os.close(first)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".book-building"]  # left alone, and no lock file


def _hand_made_page(folder, notebook, step, ran, recorded, **entry):
    """A folder with one executed page (papermill's parameters ``ran``) and record.json's entry for its step."""
    from clipalign_utils import config

    params = dict(config.resolve("smoke"), **recorded)
    params.pop("preset")
    (folder / "notebooks").mkdir(parents=True, exist_ok=True)
    page = folder / "notebooks" / f"{notebook}.ipynb"
    page.write_text(json.dumps({"metadata": {"papermill": {"parameters": ran}}}))
    (folder / "record.json").write_text(json.dumps(
        {"preset": "smoke", "steps": {step: {"preset": "smoke", "parameters": params, "sources": {}, **entry}}}))
    return page


def test_a_page_is_stale_when_any_one_parameter_it_ran_with_is_not_the_records(tmp_path):
    """stale_pages on a hand-made run: each declared parameter the page ran with, changed alone, makes the page
    stale; the record's own values, a value written another way, or a value the page was not given, do not."""
    from clipalign_utils import config
    from clipalign_utils.orchestration.book import stale_pages
    from clipalign_utils.orchestration.pipeline import declared_parameters

    values = config.resolve("smoke")
    declared = [k for k in declared_parameters("02_iqa_alignment")
                if k in values and k not in ("preset", "run_dir", "auto_train")]
    assert {"distance", "seed", "model", "iqa_levels", "n_boot"} <= set(declared)
    same = {k: values[k] for k in declared}
    page = _hand_made_page(tmp_path, "02_iqa_alignment", "iqa", same, {})
    sources = {"02_iqa_alignment": page}
    assert stale_pages(sources) == []
    for key in declared:
        other = {"model": "small", "iqa_levels": [1, 2]}.get(key, "zz_other")
        _hand_made_page(tmp_path, "02_iqa_alignment", "iqa", {**same, key: other}, {})
        assert stale_pages(sources) == ["02_iqa_alignment"], key
    _hand_made_page(tmp_path, "02_iqa_alignment", "iqa", {**same, "iqa_levels": [1, 3, 5], "n_boot": 50.0}, {})
    assert stale_pages(sources) == []  # the same values, written another way
    _hand_made_page(tmp_path, "02_iqa_alignment", "iqa", {"distance": None}, {"distance": "cosine"})
    assert stale_pages(sources) == []  # not given: not compared
    _hand_made_page(tmp_path, "02_iqa_alignment", "iqa", {"distance": "euclidean"}, {"distance": "cosine"})
    assert stale_pages(sources) == ["02_iqa_alignment"]


def test_a_page_whose_read_tables_changed_or_went_is_named_with_them(tmp_path):
    """pages_on_changed_tables on a hand-made run: the synthesis's entry (``tradeoff``, not its page's name)
    lists the hashes of the tables it read; the same bytes are no change, other bytes or a table gone are."""
    import hashlib

    from clipalign_utils.orchestration.book import pages_on_changed_tables

    (tmp_path / "metrics").mkdir()
    iqa, noise = tmp_path / "metrics" / "iqa.csv", tmp_path / "metrics" / "noise.csv"
    iqa.write_text("distance,srcc\nnormalized_euclidean,0.5\n")
    noise.write_text("sigma,acc\n0.1,0.9\n")
    read = {f"metrics/{p.name}": hashlib.sha256(p.read_bytes()).hexdigest() for p in (iqa, noise)}
    page = _hand_made_page(tmp_path, "05_tradeoff_synthesis", "tradeoff", {}, {}, tables_read=read)
    sources = {"05_tradeoff_synthesis": page}
    assert pages_on_changed_tables(sources) == {}
    iqa.write_text("distance,srcc\ncosine,0.5\n")
    assert pages_on_changed_tables(sources) == {"05_tradeoff_synthesis": ["metrics/iqa.csv"]}
    iqa.unlink()
    noise.write_text("sigma,acc\n0.1,0.8\n")
    assert pages_on_changed_tables(sources) == {"05_tradeoff_synthesis": ["metrics/iqa.csv", "metrics/noise.csv"]}


def test_the_staged_chapters_follow_the_registry_whatever_order_the_pages_come_in():
    """stage_book lists the run's pages, then the recorded ones, the placeholders, and a page 1 of a run
    trained elsewhere last: the table of contents puts them back in chapter order."""
    from clipalign_utils import registry
    from clipalign_utils.orchestration.book import NOTEBOOK_PART, toc

    pages = ["08_saliency", "02_iqa_alignment", "06_sweep", "11_interpolation", "01_train"]
    part = next(p for p in toc(pages)["parts"] if p["caption"] == NOTEBOOK_PART)
    order = registry.notebook_pages()
    assert [c["file"] for c in part["chapters"]] == [f"notebooks/{name}" for name in sorted(pages, key=order.index)]


def test_the_book_is_built_by_this_interpreter_with_every_warning_an_error(tmp_path, monkeypatch):
    import subprocess
    import sys
    from types import SimpleNamespace

    from clipalign_utils.orchestration import book

    ran = []

    def stage(run_dir, folder):
        (run_dir / folder).mkdir()
        return run_dir / folder

    def run(command, **kwargs):
        ran.append(command)
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(book, "stage_book", stage)
    monkeypatch.setattr(book, "subprocess", SimpleNamespace(run=run))
    assert book.build_book(tmp_path) == tmp_path.resolve() / "book" / "_build" / "html"
    (command,) = ran
    assert command[0] == sys.executable and "--warningiserror" in command
    assert command[command.index("build") + 1] == str(tmp_path.resolve() / ".book-building")


def test_a_folders_own_sweep_and_experiment_pages_are_shown_not_the_recorded_ones(smoke_pipeline, tmp_path):
    """A run holding its own page 6, and an experiment folder inside it (the full preset's ``quality``), with
    another beside it: the book shows the run's own page 6 over a sweep's inside it and over the one the
    repository records, and the first experiment folder's page 9; no staged page names an absolute path."""
    import shutil

    from clipalign_utils.orchestration.book import stage_book

    run_dir = tmp_path / "smoke"
    shutil.copytree(smoke_pipeline, run_dir, ignore=shutil.ignore_patterns("checkpoints", "cache", "book"))
    donor = json.loads((run_dir / "notebooks" / "02_iqa_alignment.ipynb").read_text())

    def page(path, marker):
        path.parent.mkdir(parents=True, exist_ok=True)
        notebook = dict(donor, cells=[{"cell_type": "markdown", "metadata": {}, "source": f"# {marker}\n"}])
        notebook["metadata"] = {k: v for k, v in donor["metadata"].items() if k != "papermill"}
        path.write_text(json.dumps(notebook))

    page(run_dir / "notebooks" / "06_sweep.ipynb", "OWN SWEEP")
    page(run_dir / "drivers" / "notebooks" / "06_sweep.ipynb", "INNER SWEEP")
    page(run_dir / "a_quality" / "notebooks" / "09_quality_experiment.ipynb", "FIRST EXPERIMENT")
    page(run_dir / "b_quality" / "notebooks" / "09_quality_experiment.ipynb", "SECOND EXPERIMENT")
    stage = stage_book(run_dir)
    staged = {name: (stage / "notebooks" / f"{name}.ipynb").read_text()
              for name in ("06_sweep", "09_quality_experiment")}
    assert "OWN SWEEP" in staged["06_sweep"] and "This build ran no sweep" not in staged["06_sweep"]
    assert "FIRST EXPERIMENT" in staged["09_quality_experiment"]
    summary = (stage / "_generated" / "run.md").read_text()
    assert "Page 6 compares the runs of the sweep in this directory." in summary
    assert "Page 9 compares the runs of the quality experiment in `a_quality`" in summary
    executed_in = json.loads((smoke_pipeline / "notebooks" / "02_iqa_alignment.ipynb").read_text())
    executed_in = executed_in["metadata"]["papermill"]["parameters"]["run_dir"]
    for notebook in (stage / "notebooks").glob("*.ipynb"):
        text = notebook.read_text()
        assert executed_in not in text and str(run_dir.resolve()) not in text, notebook.name
