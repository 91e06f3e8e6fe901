"""Which executed notebooks become which book pages (``book._notebook_sources``), for each kind of folder, and
the small pure helpers of the book's intro, on hand-made folders: no run, no papermill, no jupyter-book."""
from __future__ import annotations

import json

import pytest

from clipalign_utils.orchestration import book
from clipalign_utils.orchestration.book import BookBuildFailed, _notebook_sources

PER_RUN = ["01_train", "02_iqa_alignment", "03_shape_texture_bias", "04_noise_robustness", "07_similarity",
           "08_saliency"]
SYNTHESIS = "05_tradeoff_synthesis"


def _pages(folder, *names):
    (folder / "notebooks").mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / "notebooks" / f"{name}.ipynb").write_text("{}")
    return folder


def _run(folder, *names, trained=True):
    """A run directory: checkpoints/, our training's record (or none: trained elsewhere), executed pages."""
    (folder / "checkpoints").mkdir(parents=True)
    if trained:
        (folder / "train_params.json").write_text(json.dumps({"seed": 0}))
    return _pages(folder, *names)


def _nb(folder, name):
    return folder / "notebooks" / f"{name}.ipynb"


def test_a_run_shows_its_own_pages_and_its_own_optional_page(tmp_path):
    run = _run(tmp_path / "r", *PER_RUN, SYNTHESIS, "11_interpolation")
    sources, trained = _notebook_sources(run)
    assert trained == run
    assert sources == {name: _nb(run, name) for name in PER_RUN + [SYNTHESIS, "11_interpolation"]}


def test_a_run_lacking_a_page_is_refused_naming_it_and_the_command_that_makes_it(tmp_path):
    run = _run(tmp_path / "r", *[n for n in PER_RUN if n != "03_shape_texture_bias"], SYNTHESIS)
    with pytest.raises(BookBuildFailed, match=rf"^{run / 'notebooks'} lacks executed notebooks 03_shape_texture_bias: "
                                              rf"run the whole pipeline first \(clipalign run --out {run}\)$"):
        _notebook_sources(run)


def test_a_streamed_trajectory_needs_no_training_page_but_its_analyses(tmp_path):
    """A trajectory streamed into a folder of its own (source.json, no checkpoints/ left): a run, whose page 1
    is the trained-elsewhere page; a missing analysis names the --only command, not the whole pipeline."""
    run = _pages(tmp_path / "s", *PER_RUN[1:], SYNTHESIS)
    (run / "source.json").write_text("{}")
    sources, trained = _notebook_sources(run)
    assert trained == run and "01_train" not in sources and set(sources) == set(PER_RUN[1:] + [SYNTHESIS])
    _nb(run, "08_saliency").unlink()
    with pytest.raises(BookBuildFailed, match=r"lacks executed notebooks 08_saliency: run its analyses first "
                                              r"\(clipalign run --out \S+ --only iqa,shape,noise,similarity,saliency,"
                                              r"tradeoff\)$"):
        _notebook_sources(run)


def test_a_folder_of_runs_shows_its_first_complete_run_in_plan_order_and_its_own_synthesis(tmp_path):
    """seed2 comes before seed10 (natural order, as planned); a run missing a page is passed over."""
    folder = tmp_path / "default"
    _run(folder / "tiny-seed1", *PER_RUN[:-1])  # incomplete: no saliency page
    _run(folder / "tiny-seed10", *PER_RUN)
    _run(folder / "tiny-seed2", *PER_RUN)
    (folder / "runs.json").write_text("{}")
    with pytest.raises(BookBuildFailed, match=rf"^{folder} holds no complete run or no synthesis yet"):
        _notebook_sources(folder)
    _pages(folder, SYNTHESIS)
    sources, trained = _notebook_sources(folder)
    assert trained == folder / "tiny-seed2"
    assert sources == {**{name: _nb(trained, name) for name in PER_RUN}, SYNTHESIS: _nb(folder, SYNTHESIS)}


def test_a_folder_of_runs_without_a_complete_run_is_refused(tmp_path):
    folder = tmp_path / "default"
    _run(folder / "tiny-seed0", *PER_RUN[:-1])
    _pages(folder, SYNTHESIS)
    (folder / "runs.json").write_text("{}")
    with pytest.raises(BookBuildFailed, match="holds no complete run or no synthesis yet"):
        _notebook_sources(folder)


def _sweep(folder, names, compared=True):
    folder.mkdir(parents=True)
    (folder / "sweep.json").write_text(json.dumps({"runs": [{"name": name} for name in names]}))
    for name in names:
        _run(folder / name, *PER_RUN, SYNTHESIS)
    if compared:
        _pages(folder, "06_sweep")
    return folder


def test_a_sweep_shows_the_first_run_of_its_plan_and_its_comparison(tmp_path):
    sweep = _sweep(tmp_path / "sw", ["lr-b", "lr-a"])  # the plan's order, not the names'
    sources, trained = _notebook_sources(sweep)
    assert trained == sweep / "lr-b"
    assert sources == {**{name: _nb(trained, name) for name in PER_RUN + [SYNTHESIS]},
                       "06_sweep": _nb(sweep, "06_sweep")}


def test_a_sweep_without_its_comparison_or_with_an_unfinished_first_run_is_refused(tmp_path):
    sweep = _sweep(tmp_path / "sw", ["a", "b"], compared=False)
    with pytest.raises(BookBuildFailed, match=rf"^{sweep} is a sweep without its comparison yet: finish it first "
                                              r"\(run the same clipalign sweep command again\)$"):
        _notebook_sources(sweep)
    _pages(sweep, "06_sweep")
    _nb(sweep / "a", "04_noise_robustness").unlink()
    lacking = _nb(sweep / "a", "04_noise_robustness")
    with pytest.raises(BookBuildFailed, match=rf"^the sweep's first run lacks {lacking}: finish the sweep first"):
        _notebook_sources(sweep)


def test_an_experiment_shows_its_first_finished_sweep_and_its_own_page(tmp_path):
    experiment = tmp_path / "quality"
    experiment.mkdir()
    (experiment / "experiment.json").write_text("{}")
    with pytest.raises(BookBuildFailed, match=r"is an experiment without its comparison yet: finish it first "
                                              r"\(run the same clipalign experiment command again\)$"):
        _notebook_sources(experiment)
    _sweep(experiment / "b_sweep", ["b0"])
    _sweep(experiment / "a_sweep", ["a0"])
    _pages(experiment, "09_quality_experiment")
    sources, trained = _notebook_sources(experiment)
    assert trained == experiment / "a_sweep" / "a0"
    assert sources["06_sweep"] == _nb(experiment / "a_sweep", "06_sweep")
    assert sources["09_quality_experiment"] == _nb(experiment, "09_quality_experiment")
    assert sources[SYNTHESIS] == _nb(trained, SYNTHESIS)


def test_a_folder_that_is_no_run_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(BookBuildFailed, match=r"holds no run, runs, sweep or experiment: run the pipeline into it"):
        _notebook_sources(tmp_path / "empty")


def test_a_folder_shows_a_page_of_a_streamed_trajectory_inside_it(tmp_path):
    """Page 10 of the default book: a trajectory streamed into a folder of the folder of runs."""
    folder = tmp_path / "default"
    _run(folder / "tiny-seed0", *PER_RUN)
    _pages(folder, SYNTHESIS)
    for name in ("real_b", "real_a"):  # two trajectories: the first by name is shown
        _pages(folder / name, *PER_RUN[1:], SYNTHESIS, "10_real_clip")
        (folder / name / "source.json").write_text("{}")
    sources, trained = _notebook_sources(folder)
    assert trained == folder / "tiny-seed0" and sources["10_real_clip"] == _nb(folder / "real_a", "10_real_clip")
    assert "06_sweep" not in sources and "09_quality_experiment" not in sources


def test_page_numbers_and_page_lists():
    """The intro's "Pages 1–4 and 7–8 show the run …": chapter numbers from the pages' names, in order."""
    assert [book.page_number(n) for n in ("07_similarity", "11_interpolation", "intro")] == ["7", "11", "intro"]
    assert book._page_list(["01_train"]) == "Page 1"
    # consecutive chapters joined by a dash, two of them too (the docstring's "1–4, 7 and 8" is the style only)
    assert book._page_list(PER_RUN) == "Pages 1–4 and 7–8"
    assert book._page_list(PER_RUN + [SYNTHESIS]) == "Pages 1–5 and 7–8"
    assert book._page_list(["03_x", "01_x", "05_x"]) == "Pages 1, 3 and 5"
    assert book._page_list(["01_x", "02_x"]) == "Pages 1–2"


def test_the_command_that_executes_a_stale_page_again(tmp_path):
    assert book._execute_again(["02_iqa_alignment", SYNTHESIS], tmp_path) == (
        f"clipalign run --out {tmp_path} --only iqa,tradeoff")
    assert book._execute_again(["06_sweep"], tmp_path) == (
        f"the clipalign sweep command that made {tmp_path} again (its finished runs are kept)")
    assert book._execute_again(["09_quality_experiment"], tmp_path).startswith("the clipalign experiment command")


def test_a_refused_stage_writes_nothing(tmp_path, monkeypatch):
    """A stale page stops stage_book before it removes or writes any staging folder."""
    run = _run(tmp_path / "r", *PER_RUN, SYNTHESIS)
    (run / "book").mkdir()
    (run / "book" / "keep").write_text("previous")
    monkeypatch.setattr(book, "stale_pages", lambda sources: ["02_iqa_alignment"])
    with pytest.raises(BookBuildFailed, match=rf"^page 02_iqa_alignment in {run} was executed with other parameters"
                                              rf".*run clipalign run --out {run} --only iqa to execute it"):
        book.stage_book(run)
    assert (run / "book" / "keep").read_text() == "previous"
    assert sorted(p.name for p in run.iterdir()) == ["book", "checkpoints", "notebooks", "train_params.json"]
    monkeypatch.setattr(book, "stale_pages", lambda sources: [])
    monkeypatch.setattr(book, "pages_on_changed_tables", lambda sources: {SYNTHESIS: ["metrics/iqa.csv"]})
    with pytest.raises(BookBuildFailed, match=rf"^page {SYNTHESIS} in {run} was made from tables that have changed "
                                              r"since \(metrics/iqa.csv\): run clipalign run --out \S+ "
                                              r"--only tradeoff"):
        book.stage_book(run, ".book-building")
    assert not (run / ".book-building").exists()


def test_a_failed_build_is_kept_aside_and_the_previous_book_stays(tmp_path, monkeypatch):
    import subprocess
    from types import SimpleNamespace

    def stage(run_dir, folder):
        (run_dir / folder).mkdir()
        return run_dir / folder

    monkeypatch.setattr(book, "stage_book", stage)
    monkeypatch.setattr(book, "subprocess", SimpleNamespace(
        run=lambda command, **kwargs: subprocess.CompletedProcess(command, 3, "out\n", "err\n")))
    failed = tmp_path / ".book-failed"
    with pytest.raises(BookBuildFailed, match=rf"^the book build failed \(exit 3\); see {failed / 'build.log'}$"):
        book.build_book(tmp_path)  # no previous book: none named
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "old").write_text("previous")
    with pytest.raises(BookBuildFailed, match=rf"^the book build failed \(exit 3\); see {failed / 'build.log'}; "
                                              rf"{tmp_path / 'book'} is the previous build$"):
        book.build_book(tmp_path)
    assert (failed / "build.log").read_text() == "out\nerr\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".book-failed", "book"]
    assert (tmp_path / "book" / "old").read_text() == "previous"
    # a build that succeeds then replaces the previous book whole and clears the failed one
    monkeypatch.setattr(book, "subprocess", SimpleNamespace(
        run=lambda command, **kwargs: subprocess.CompletedProcess(command, 0, "", "")))
    book.build_book(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["book"]
    assert sorted(p.name for p in (tmp_path / "book").iterdir()) == ["build.log"]


def test_inner_pages_are_in_natural_name_order_as_a_folders_runs_are(tmp_path):
    # trajectory10 after trajectory2, as RunDir.runs orders seeds (plain string order put 10 first)
    from clipalign_utils.orchestration.book import _inner_pages

    for name in ("trajectory10", "trajectory2", "book"):
        (tmp_path / name / "notebooks").mkdir(parents=True)
        (tmp_path / name / "notebooks" / "10_real_clip.ipynb").write_text("{}")
    assert [path.parent.parent.name for path in _inner_pages(tmp_path, "10_real_clip")] == [
        "trajectory2", "trajectory10"]
