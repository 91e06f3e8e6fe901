"""The run-directory type: where a run keeps what it writes, which steps are done, what a folder is."""
from __future__ import annotations

import pandas as pd

from clipalign_utils import registry
from clipalign_utils.io import write_table, write_tables
from clipalign_utils.layout import KINDS, RunDir, runs_in
from clipalign_utils.plots.common import save_figure


def test_paths_of_a_run(tmp_path):
    run = RunDir(str(tmp_path / "tiny-seed0"))
    assert run.path == tmp_path / "tiny-seed0" and run.name == "tiny-seed0"
    assert run.checkpoints == tmp_path / "tiny-seed0" / "checkpoints"
    assert run.table("iqa") == tmp_path / "tiny-seed0" / "metrics" / "iqa.csv"
    assert run.figure("shape_bias_vs_epoch") == tmp_path / "tiny-seed0" / "figures" / "shape_bias_vs_epoch.png"
    assert run.executed("02_iqa_alignment") == tmp_path / "tiny-seed0" / "notebooks" / "02_iqa_alignment.ipynb"
    assert run.train_record.name == "train_params.json" and run.params_txt.name == "params.txt"
    assert run.record("runs") == tmp_path / "tiny-seed0" / "runs.json" and KINDS[0] == "run"


def test_writers_put_tables_and_figures_where_the_layout_says(tmp_path):
    import matplotlib.pyplot as plt

    run = RunDir(tmp_path)
    write_tables({"a": pd.DataFrame({"x": [1]}), "b": pd.DataFrame({"y": [2.5]})}, tmp_path)
    assert pd.read_csv(run.table("a"))["x"].tolist() == [1] and pd.read_csv(run.table("b"))["y"].tolist() == [2.5]
    assert write_table(pd.DataFrame({"z": [0]}), tmp_path, "c") == run.table("c")
    fig = plt.figure()
    save_figure(fig, tmp_path, "f")
    plt.close(fig)
    assert run.figure("f").stat().st_size > 0
    assert sorted(p.name for p in run.metrics.iterdir()) == ["a.csv", "b.csv", "c.csv"]  # no temporary left
    # a step's optional table it did not produce this time goes; one it produced, and others', stay
    save_figure(plt.figure(), tmp_path, "b")  # the page's figure of table b
    plt.close("all")
    write_tables({"a": pd.DataFrame({"x": [3]})}, tmp_path, optional=("b", "d"))
    assert sorted(p.name for p in run.metrics.iterdir()) == ["a.csv", "c.csv"]
    assert sorted(p.name for p in run.figure("f").parent.iterdir()) == ["f.png"]
    write_tables({"a": pd.DataFrame({"x": [4]}), "b": pd.DataFrame({"y": [1.0]})}, tmp_path, optional=("b",))
    assert pd.read_csv(run.table("b"))["y"].tolist() == [1.0]


def test_a_step_is_done_when_its_notebook_ran_and_a_run_complete_when_every_step_is(tmp_path):
    run = RunDir(tmp_path / "r")
    run.checkpoints.mkdir(parents=True)
    assert run.is_run and run.kind == "run" and not run.done("iqa") and not run.complete
    per_run = registry.per_run_steps()
    for step in per_run[:-1]:
        run.executed(step.notebook).parent.mkdir(exist_ok=True)
        run.executed(step.notebook).write_text("{}")
    assert run.done("iqa") and not run.complete  # the last per-run step is missing
    run.executed(per_run[-1].notebook).write_text("{}")
    assert run.complete  # the synthesis is not a per-run step
    assert not run.done(registry.synthesis().name)


def test_a_folder_of_runs_lists_its_runs_not_its_book(tmp_path):
    books = ("book", ".book-building", ".book-failed", ".book-replaced")  # the book, and it being built or failed
    runs = ("tiny-seed10", "tiny-seed1", "small-seed2", "tiny-seed2")
    for name in (*runs, "notes", *books):
        (tmp_path / name).mkdir()
    for name in (*runs, *books):
        (tmp_path / name / "checkpoints").mkdir()
    folder = RunDir(tmp_path)
    # natural order: seed2 before seed10, as planned (plain string order put seed10 first)
    in_order = ["small-seed2", "tiny-seed1", "tiny-seed2", "tiny-seed10"]
    assert [r.name for r in folder.runs()] == in_order and folder.kind == "runs"
    assert runs_in(tmp_path) == [tmp_path / name for name in in_order]
    assert RunDir(tmp_path / "tiny-seed1").runs() == []


def test_in_a_notebook_a_saved_figure_is_shown_from_its_file_at_the_backends_size(tmp_path, monkeypatch):
    import base64

    import IPython.display
    import matplotlib
    import matplotlib.pyplot as plt

    shown = []
    monkeypatch.setattr(matplotlib, "get_backend", lambda: "module://matplotlib_inline.backend_inline")
    monkeypatch.setattr(IPython.display, "display", lambda bundle, raw, metadata: shown.append((bundle, metadata)))
    fig = plt.figure(figsize=(4, 3), dpi=100)
    save_figure(fig, tmp_path, "f")
    saved = RunDir(tmp_path).figure("f").read_bytes()
    [(bundle, metadata)] = shown
    assert base64.b64decode(bundle["image/png"]) == saved  # drawn once: the file is what the page shows
    assert bundle["text/plain"] == "<Figure size 400x300 with 0 Axes>"  # as the backend would say
    assert not plt.fignum_exists(fig.number)  # closed, so the backend does not draw it again
    width = int.from_bytes(saved[16:20], "big")
    assert abs(width - 4 * 120) <= 30 and metadata["image/png"]["width"] == round(width * 100 / 120)


def test_titles_sit_on_their_axes_and_clear_a_top_axis(tmp_path):
    import matplotlib.pyplot as plt

    from clipalign_utils.plots.common import samples_axis

    fig, (plain, epochs) = plt.subplots(1, 2, figsize=(8, 3))
    plain.set_title("plain")
    epochs.set(title="with samples seen", xlabel="epoch", xlim=(0, 10))
    samples_axis(fig, 4e8)  # only the axis whose x is the epoch gets a top axis
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    assert plain.title.get_position()[1] == 1.0  # fixed: no top axis to clear
    top = epochs.child_axes[0].xaxis.get_tightbbox(renderer)
    assert epochs.title.get_window_extent(renderer).y0 >= top.y1 - 1  # above the top axis and its label
    assert epochs.title.get_position()[1] > 1.0
    plt.close(fig)


def test_a_run_whose_training_page_is_missing_is_not_complete(tmp_path):
    """Every analysis page executed but not the training's: the run is not complete (a multi-run folder or a
    sweep would skip it and its training would never be recorded as run)."""
    run = RunDir(tmp_path / "r")
    run.notebooks.mkdir(parents=True)
    for step in registry.per_run_steps():
        if step.name != "train":
            run.executed(step.notebook).write_text("{}")
    assert not run.done("train") and not run.complete
    run.executed(registry.get("train").notebook).write_text("{}")
    assert run.complete


def test_a_run_lacking_one_table_of_a_step_is_missing_that_step_and_not_shared_as_tables(tmp_path):
    """missing_analyses names a step whose table is absent; such a run without weights is not synthesised from
    its tables alone."""
    run = RunDir(tmp_path / "r")
    run.metrics.mkdir(parents=True)
    steps = registry.analysis_steps()
    for step in steps:
        for table in step.tables:
            run.table(table.name).write_text("x\n1\n")
    assert run.missing_analyses() == [] and run.tables_only()
    run.table(steps[1].tables[-1].name).unlink()
    assert run.missing_analyses() == [steps[1].name] and not run.tables_only()
    run.table(steps[1].tables[-1].name).write_text("x\n1\n")
    run.checkpoints.mkdir()
    assert not run.tables_only()  # a run with its weights is checked as ever


def test_a_trajectory_streamed_into_a_folder_of_runs_is_none_of_its_runs(tmp_path):
    """A streamed trajectory (source.json) beside the runs is a page of the folder's book, not one of its runs."""
    for name in ("tiny-seed0", "streamed"):
        (tmp_path / name / "checkpoints").mkdir(parents=True)
    (tmp_path / "streamed" / "source.json").write_text("{}")
    assert [r.name for r in RunDir(tmp_path).runs()] == ["tiny-seed0"]
