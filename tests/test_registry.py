"""The step registry: one list of steps, notebooks and table schemas; imports without a cycle; a toy
step registered at run time runs through `clipalign run`, lands in `results` and in the built book."""
from __future__ import annotations

import ast
import json
import shutil
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import yaml

from clipalign_utils import registry
from clipalign_utils.errors import ParameterError

PACKAGE = Path(registry.__file__).resolve().parent


# --- imports run one way ------------------------------------------------------------------------
def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """Package modules ``path`` imports anywhere in it (module level or inside functions)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                root = ".".join(base + ([node.module] if node.module else []))
            else:
                root = node.module or ""
            targets = [f"{root}.{alias.name}" if f"{root}.{alias.name}" in modules else root for alias in node.names]
        else:
            continue
        found |= {t for t in targets if t in modules and t != name}
    return found


def import_graph() -> dict[str, set[str]]:
    files = [p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts]
    modules = {_module_name(p) for p in files}
    return {_module_name(p): _imports(p, modules) for p in files}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for child in sorted(graph.get(node, ())):
            if state.get(child) == "open":
                return stack[stack.index(child):] + [child]
            if child not in state:
                cycle = visit(child)
                if cycle:
                    return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_no_import_cycle_in_the_package():
    graph = import_graph()
    assert "clipalign_utils.registry" in graph and graph["clipalign_utils.cli"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


# The layers, top to bottom: a module imports its own layer's and those below, never one above. The parameters
# (config, record) sit above data: they are checked against the registered datasets and the world. Modules of no
# listed layer (errors, choices, layout, io, schedule, registry, …) are the leaves under them all.
LAYERS = (("cli", "orchestration"), ("steps",), ("results",), ("plots",), ("metrics",), ("encoder",),
          ("models", "train", "openclip_train", "checkpoints", "sources"), ("config", "record"), ("data",))
# The registry finds the step packages by importing them (they hold registrations, no code that measures).
UPWARD_BY_DESIGN = {("clipalign_utils.registry", "clipalign_utils.steps")}


def layer(module: str) -> int:
    part = module.split(".")[1] if "." in module else ""
    return next((i for i, names in enumerate(LAYERS) if part in names), len(LAYERS))


def upward_imports(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    return sorted((module, imported) for module, imports in graph.items() for imported in imports
                  if layer(imported) < layer(module) and (module, imported) not in UPWARD_BY_DESIGN)


def test_imports_run_downward_through_the_layers():
    # (an audit found the encoder reading a constant of metrics.iqa: the encoder now owns it)
    assert upward_imports(import_graph()) == []
    assert upward_imports({"clipalign_utils.encoder": {"clipalign_utils.metrics.iqa"},
                           "clipalign_utils.metrics.iqa": {"clipalign_utils.encoder"}}) == [
        ("clipalign_utils.encoder", "clipalign_utils.metrics.iqa")]


def test_cycle_finder_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_only_the_cli_builds_the_book():
    graph = import_graph()
    importers = sorted(m for m, deps in graph.items() if "clipalign_utils.orchestration.book" in deps)
    assert importers == ["clipalign_utils.orchestration.cli"]
    # The registry sits below everything: it imports only the errors module, and the steps package (which
    # holds no code) to find the step packages in it.
    assert graph["clipalign_utils.registry"] <= {"clipalign_utils.errors", "clipalign_utils.steps"}


# --- the registry itself ------------------------------------------------------------------------
def test_finding_the_steps_imports_none_of_their_measuring_code():
    """The registry finds the step packages without their analysis modules (every command starts by finding
    them): a review found interpolation's registration importing the IQA step's analysis code, 0.8 s of it."""
    import subprocess

    probe = ("import sys; from clipalign_utils import registry; registry.steps(); "
             "print(sorted(m for m in sys.modules if m.startswith('clipalign_utils.steps.') "
             "and m.rsplit('.', 1)[-1] in ('analysis', 'ends', 'page', 'maps')))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_registry_lists_the_steps_in_order_with_the_synthesis_last():
    assert registry.names() == ["train", "iqa", "shape", "noise", "similarity", "saliency", "interpolation", "tradeoff"]
    # the optional step runs when --only names it: not part of a run
    assert [s.name for s in registry.per_run_steps()] == ["train", "iqa", "shape", "noise", "similarity", "saliency"]
    assert registry.synthesis().name == "tradeoff" and registry.steps()[-1].synthesis
    assert registry.get("similarity").notebook == "07_similarity"
    assert registry.get("saliency").notebook == "08_saliency"
    assert [t.name for t in registry.get("similarity").tables] == ["two_afc"]
    assert registry.table("saliency").columns == ("checkpoint", "epoch", "dataset", "method", "metric", "value",
                                                  "value_lo", "value_hi", "n_images")
    assert registry.step_of_table("shape_bias").name == "shape"
    with pytest.raises(ParameterError, match="unknown step 'nope'; steps: train"):
        registry.get("nope")


def test_register_checks_dependencies_tables_and_synthesis():
    with pytest.raises(ParameterError, match="unregistered"):
        registry.register(registry.Step("x", "99_x", depends=("no-such-step",)))
    with pytest.raises(ParameterError, match="^step 'x': table iqa belongs to another step$"):
        registry.register(registry.Step("x", "99_x", (registry.Table("iqa", ("checkpoint",)),)))
    with pytest.raises(ParameterError, match="synthesis step already"):
        registry.register(registry.Step("x", "99_x", synthesis=True))
    with pytest.raises(ParameterError, match="registered already"):
        registry.register(registry.Step("iqa", "02_iqa_alignment"))
    assert "x" not in registry.names()


def test_committed_toc_lists_the_registry_pages():
    from clipalign_utils.orchestration.book import NOTEBOOK_PART

    toc = yaml.safe_load((registry.REPO_ROOT / "_toc.yml").read_text())
    part = next(p for p in toc["parts"] if p["caption"] == NOTEBOOK_PART)
    assert [c["file"] for c in part["chapters"]] == [f"notebooks/{n}" for n in registry.notebook_pages()]


def test_step_schemas_are_the_modules_columns():
    from clipalign_utils.steps.saliency import analysis as saliency
    from clipalign_utils.steps.similarity import analysis as similarity

    assert similarity.CSV_COLUMNS == list(registry.table("two_afc").columns)
    assert saliency.SALIENCY_COLUMNS == list(registry.table("saliency").columns)


def test_every_step_module_measures_with_one_signature():
    """``load(run, params)`` and ``measure(run, params, data=None) -> {table: DataFrame}``; the synthesis
    reads runs (``run_dirs``)."""
    import importlib
    import inspect

    for step in registry.steps():
        if step.name == "train":
            continue  # training is no measurement: its module is the trainer
        module = importlib.import_module(step.module)
        for function in (module.load, module.measure):
            parameters = list(inspect.signature(function).parameters.values())
            first = "run_dirs" if step.synthesis else "run"
            assert [p.name for p in parameters[:2]] == [first, "params"], (step.name, function.__name__)
            assert all(p.default is not inspect.Parameter.empty for p in parameters[2:]), (step.name, function.__name__)


# --- a toy step registered at run time -----------------------------------------------------------
TOY_MODULE = '''
"""A toy analysis step: one number per checkpoint."""
import pandas as pd


def measure(run, params):
    return {"toy": pd.DataFrame({"checkpoint": [c.name for c in run.checkpoints],
                                 "epoch": [c.epoch for c in run.checkpoints],
                                 "toy_value": [float(i) for i, _ in enumerate(run.checkpoints)]})}
'''


def _toy_notebook(module_dir: Path) -> str:
    return textwrap.dedent(f'''\
        # ---
        # jupyter:
        #   kernelspec:
        #     display_name: Python 3
        #     language: python
        #     name: python3
        # ---

        # %% [markdown]
        # # 99. A toy step

        # %% tags=["parameters"]
        run_dir = "runs/default"
        preset = "default"

        # %%
        import sys
        sys.path.insert(0, {str(module_dir)!r})
        from pathlib import Path
        import toy_step
        from clipalign_utils import checkpoints, config
        from clipalign_utils.io import write_table
        for name, table in toy_step.measure(checkpoints.discover_run(run_dir), config.resolve(preset)).items():
            write_table(table, Path(run_dir), name)
        print("toy step ran")
        ''')


def _toy_files(tmp_path: Path, module: str, source: str, notebook: str) -> Path:
    """The toy step's module (``module``.py on sys.path) and notebook; returns the notebook folder."""
    module_dir = tmp_path / f"{module}_module"
    module_dir.mkdir()
    (module_dir / f"{module}.py").write_text(source)
    notebook_dir = tmp_path / "toy_notebooks"
    notebook_dir.mkdir()
    (notebook_dir / f"{notebook}.py").write_text(_toy_notebook(module_dir))
    sys.path.insert(0, str(module_dir))
    return notebook_dir


@pytest.fixture
def toy_step(tmp_path):
    notebook_dir = _toy_files(tmp_path, "toy_step", TOY_MODULE, "99_toy")
    step = registry.register(registry.Step(
        "toy", "99_toy", (registry.Table("toy", ("checkpoint", "epoch", "toy_value")),), depends=("train",),
        notebook_dir=notebook_dir, title="a toy"))
    yield step
    registry.unregister("toy")
    sys.path.remove(str(tmp_path / "toy_step_module"))


@pytest.mark.slow
def test_toy_step_runs_through_the_cli_into_results_and_the_book(toy_step, smoke_pipeline, tmp_path, capsys):
    from clipalign_utils import cli, results
    from clipalign_utils.orchestration import pipeline

    assert pipeline.STEPS["toy"] == "99_toy" and list(pipeline.STEPS)[-1] == "tradeoff"
    run_dir = tmp_path / "run"
    shutil.copytree(smoke_pipeline, run_dir, ignore=shutil.ignore_patterns("book"), symlinks=True)
    assert cli.main(["run", "--preset", "smoke", "--out", str(run_dir), "--only", "toy"]) == 0
    assert (run_dir / "notebooks" / "99_toy.ipynb").exists()
    table = results.read_metric(run_dir, "toy")
    assert list(table.columns) == ["checkpoint", "epoch", "toy_value"] and len(table) >= 5
    assert "toy" in results.step_tables(run_dir)
    assert cli.main(["book", str(run_dir)]) == 0
    html = run_dir / "book" / "_build" / "html" / "notebooks" / "99_toy.html"
    assert html.exists() and "toy step ran" in html.read_text()
    staged = yaml.safe_load((run_dir / "book" / "_toc.yml").read_text())
    files = [c["file"] for p in staged["parts"] for c in p.get("chapters", [])]
    assert "notebooks/99_toy" in files and files.index("notebooks/99_toy") > files.index("notebooks/08_saliency")
    executed = json.loads((run_dir / "notebooks" / "99_toy.ipynb").read_text())
    assert executed["metadata"]["papermill"]["parameters"]["preset"] == "smoke"
    assert isinstance(pd.read_csv(run_dir / "metrics" / "toy.csv"), pd.DataFrame)


# --- a toy step whose curve joins the synthesis: only its module, its notebook and its registry entry -------
TOY_SUMMARY_MODULE = '''
"""A toy step whose per-checkpoint score joins the synthesis."""


def summary_columns(table, distance, path):
    return table[["checkpoint", "toy_score", "toy_score_lo", "toy_score_hi"]]
'''
TOY_EPOCHS = [0.0, 1.0, 2.0, 6.0, 9.0, 12.0]
TOY_SCORE = [0.2, 0.8, 0.6, 0.4, 0.3, 0.2]  # peaks at epoch 1, inside the early third


@pytest.fixture
def toy_summary_step(tmp_path):
    notebook_dir = _toy_files(tmp_path, "toy_summary_step", TOY_SUMMARY_MODULE, "98_toy_score")
    claim = registry.PeakClaim("toy score peaks early then declines", "toy score", "images", "toy")
    step = registry.register(registry.Step(
        "toy_score", "98_toy_score", (registry.Table("toy_score", ("checkpoint", "epoch", "toy_score")),),
        depends=("train",), module="toy_summary_step", notebook_dir=notebook_dir, title="a toy score",
        parameters={"toy_images": 8}, presets={"smoke": {"toy_images": 2}},
        summary=registry.Summary("toy_score", "toy score", (("toy_score", "toy_score_lo", "toy_score_hi"),),
                                 panel=("agreement", "toy score"), claims=(claim,))))
    yield step
    registry.unregister("toy_score")
    sys.path.remove(str(tmp_path / "toy_summary_step_module"))


def _write_run(run_dir: Path) -> None:
    """A run's metric tables: the three the synthesis needs, the toy step's and its paired early-peak test."""
    def write(name, frame):
        (run_dir / "metrics").mkdir(parents=True, exist_ok=True)
        frame.to_csv(run_dir / "metrics" / f"{name}.csv", index=False)

    names = [f"epoch_{e:g}" for e in TOY_EPOCHS]
    n = len(names)
    write("iqa", pd.DataFrame({"checkpoint": names, "epoch": TOY_EPOCHS, "dataset": "embedded", "distance": "cosine",
                               "distortion": "all", "srcc": [0.1, 0.5, 0.4, 0.3, 0.3, 0.2], "srcc_lo": 0.0,
                               "srcc_hi": 0.6}))
    write("shape_bias", pd.DataFrame({"checkpoint": names, "epoch": TOY_EPOCHS, "dataset": "embedded",
                                      "shape_bias": [0.2, 0.3, 0.4, 0.5, 0.6, 0.7], "lo": 0.1, "hi": 0.8}))
    write("noise", pd.DataFrame({"checkpoint": names * 2, "epoch": TOY_EPOCHS * 2, "dataset": "embedded",
                                 "sigma": [0.0] * n + [0.1] * n, "accuracy": 0.8, "lo": 0.7, "hi": 0.9,
                                 "normalized_drop": [0.0] * n + [0.5, 0.45, 0.4, 0.35, 0.3, 0.25]}))
    write("toy_score", pd.DataFrame({"checkpoint": names, "epoch": TOY_EPOCHS, "toy_score": TOY_SCORE,
                                     "toy_score_lo": [v - 0.05 for v in TOY_SCORE],
                                     "toy_score_hi": [v + 0.05 for v in TOY_SCORE]}))
    write("toy_peak", pd.DataFrame({"early_drop": [0.6], "lo": [0.5], "hi": [0.7]}))


def test_a_toy_step_joins_the_synthesis_from_its_registry_entry(toy_summary_step, tmp_path):
    from clipalign_utils import config, results
    from clipalign_utils.metrics import tradeoff
    from clipalign_utils.orchestration.book import NOTEBOOK_PART, toc
    from clipalign_utils.plots.tradeoff import summary_figure
    from clipalign_utils.steps.tradeoff import analysis as synthesis

    # its parameter is a parameter of every preset, with its own per-preset value
    assert config.resolve("default")["toy_images"] == 8 and config.resolve("smoke")["toy_images"] == 2
    run_dir = tmp_path / "run"
    _write_run(run_dir)
    table = results.checkpoint_table(run_dir)
    assert table["toy_score"].tolist() == TOY_SCORE
    assert table["toy_early_drop"].tolist() == [0.6] * len(TOY_EPOCHS) and table["toy_early_drop_lo"].iloc[0] == 0.5
    tables = synthesis.measure([run_dir], {**config.resolve("smoke"), "distance": None})
    assert "toy_score" in tables["tradeoff"].columns
    means = tables["tradeoff_seed_means"]
    assert means["toy_score"].tolist() == pytest.approx(TOY_SCORE) and "toy_early_drop" in means.columns
    verdicts = tables["tradeoff_verdicts"].set_index("claim")
    row = verdicts.loc["toy score peaks early then declines"]
    assert row["verdict"] == tradeoff.REPRODUCED and row["value"] == pytest.approx(0.6)
    assert row["statistic"] == "max early toy score − final toy score (paired bootstrap over images)"
    assert verdicts.index[-1] == "toy score peaks early then declines"  # an optional step's claim comes last
    assert ("toy_score", "toy score") in synthesis.peaked() and "toy_score" in synthesis.optional_columns()
    noise_means = tradeoff.seed_means(results.noise_curves_of([run_dir]), {"accuracy": ("lo", "hi")},
                                      by=("scale", "sigma", "epoch"))
    figure = summary_figure(means, noise_means)
    titles = [ax.get_title() for ax in figure.axes]
    # lettered after the registered (e) 2AFC and (f) saliency panels, which this run's tables do not have
    assert titles[4:] == ["(g) toy score"]
    panel = figure.axes[4]
    assert panel.get_ylabel() == "agreement" and list(panel.lines[0].get_ydata()) == pytest.approx(TOY_SCORE)
    part = next(p for p in toc(registry.notebook_pages())["parts"] if p["caption"] == NOTEBOOK_PART)
    files = [c["file"] for c in part["chapters"]]
    assert files.index("notebooks/98_toy_score") == files.index("notebooks/11_interpolation") + 1
