"""Folder pages recorded in the repository: pages 6 (the drivers sweep) and 9 (the quality experiment) in
a book whose folder ran neither, as the README's main command builds it.

``book/recorded/<page>/`` holds what the page reads, and the page executed on it::

    recorded.json        the commit, machine, date and commands that produced the folder; what was left out
    folder/              the sweep's or experiment's folder with every run's summary tables and records
                         (metrics/*.csv without the per-image tables no comparison reads, record.json,
                         sweep.json …; no checkpoints, caches or notebooks), then the page's own tables,
                         which executing the page on it wrote
    <page>.ipynb         the page executed on ``folder/`` (paths relative to the checkout, no progress bars)

``record_page`` writes all three from a finished sweep or experiment; :mod:`.book` shows the executed
page, under a note saying where it came from, wherever the build's folder holds no page of its own. A
test re-executes each page on its recorded folder and compares the outputs.

    python -m clipalign_utils.orchestration.recorded 06_sweep runs/full/drivers --command "clipalign …"
    python -m clipalign_utils.orchestration.recorded --again 06_sweep

``--again`` executes a recorded page anew on its shipped tables with the checkout's code (a changed verdict
rule or sentence; the tables the runs measured stay those of the recorded commit), and records the commit
that executed it.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Callable

from .. import record, registry
from ..errors import ParameterError
from ..io import write_json
from ..layout import KIND_RECORDS, PARTS, RUN_RECORD, TRAIN_RECORD, RunDir
from ..registry import REPO_ROOT
from . import publish

RECORDED = REPO_ROOT / "book" / "recorded"
FOLDER = "folder"
INDEX = "recorded.json"
# Per-image, per-pair and per-triplet tables: the step pages read them, no comparison of runs does.
PER_ITEM_TABLES = frozenset({"iqa_pairs", "two_afc_per_triplet", "shape_predictions", "shape_bias_per_class",
                             "saliency_per_image", "saliency_regions", "interpolation"})
RECORD_FILES = (RUN_RECORD, TRAIN_RECORD, *KIND_RECORDS.values())
# The pages that can be recorded: a folder page and the kind of folder it compares.
PAGES = {registry.SWEEP_PAGE: "sweep", "09_quality_experiment": "experiment"}


def recorded_dir(page: str, root: Path = RECORDED) -> Path:
    return root / page


def recorded_notebook(page: str, root: Path = RECORDED) -> Path | None:
    """The recorded executed page, None when the repository records none."""
    path = recorded_dir(page, root) / f"{page}.ipynb"
    return path if path.exists() and (recorded_dir(page, root) / INDEX).exists() else None


def index(page: str, root: Path = RECORDED) -> dict:
    return json.loads((recorded_dir(page, root) / INDEX).read_text())


def _folders(source: Path) -> list[Path]:
    """``source`` and every folder below it that may be a run or a sweep, following links (the full preset's
    drivers sweep links its base run), never into a run's parts (checkpoints, cache, notebooks …)."""
    found = [source]
    for child in sorted(source.iterdir()):
        if child.is_dir() and child.name not in PARTS and not child.name.startswith("."):
            found += _folders(child)
    return found


def copy_tables(source: Path, target: Path) -> int:
    """Copy the record files and summary tables of ``source`` and of every folder below it (runs, sweeps)
    into ``target``; return the number of files copied. Checkpoints, caches, notebooks, figures and the
    staged book stay behind."""
    copied = 0
    for folder in _folders(source):
        out = target / folder.relative_to(source)
        for name in RECORD_FILES:
            if (folder / name).is_file():
                out.mkdir(parents=True, exist_ok=True)
                shutil.copy2(folder / name, out / name)
                copied += 1
        for table in sorted((folder / "metrics").glob("*.csv")):
            if table.stem not in PER_ITEM_TABLES:
                (out / "metrics").mkdir(parents=True, exist_ok=True)
                shutil.copy2(table, out / "metrics" / table.name)
                copied += 1
    return copied


def execute_page(page: str, folder: Path, progress: bool = False) -> Path:
    """Execute ``page`` on ``folder`` with the parameters the folder's record holds for it (as the sweep or
    experiment command resolved them); return the executed notebook."""
    from .pipeline import run_page

    entry = record.read(folder).get("steps", {}).get(page)
    if entry is None:
        raise ParameterError(f"{RunDir(folder).run_record} has no entry for {page}: finish the sweep or "
                             f"experiment first (its command executes the page last)")
    resolved = record.Resolved.from_json(entry)
    return run_page(page, folder, resolved, progress=progress, label=f"page {page} on its recorded tables")


def publishable(notebook: Path, folder: Path, shown: str) -> dict:
    """The executed page as the book shows it: the folder's absolute path shown as ``shown``."""
    return publish.publishable(json.loads(notebook.read_text()), publish.path_replacements([(str(folder), shown)]))


def record_page(page: str, source: str | Path, commands: list[str], commit: str, left_out: str = "",
                machine: str | None = None, date: str | None = None, root: Path = RECORDED,
                progress: bool = False) -> Path:
    """Record the finished sweep or experiment ``source`` for ``page``: copy its tables into
    ``root/<page>/folder``, execute the page on that copy, write the executed page and ``recorded.json``.
    The previous record is replaced only once the new one is complete."""
    if page not in PAGES:
        raise ParameterError(f"page {page!r}: the recorded pages are {', '.join(PAGES)}")
    source = Path(source).resolve()
    if RunDir(source).kind != PAGES[page]:
        raise ParameterError(f"{source} is not a {PAGES[page]} folder (no {KIND_RECORDS[PAGES[page]]}): "
                             f"page {page} compares the runs of one")
    return _write_record(page, lambda folder: copy_tables(source, folder), {
        "page": page, "commit": commit, "date": date,
        "machine": machine or this_machine(),
        "commands": list(commands), "left_out": left_out}, root, progress)


def this_machine() -> str:
    """The CPU a recording ran on, as recorded.json names it ("2 CPU cores (x86_64, AMD EPYC)"): another CPU model
    gives other last bits, which training amplifies (book/limitations.md)."""
    model = ""
    try:
        model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), "")
    except OSError:
        pass
    model = model or platform.processor()
    return f"{os.cpu_count()} CPU cores ({platform.machine()}{', ' + model if model else ''})"


def _write_record(page: str, fill: Callable[[Path], object], entry: dict, root: Path, progress: bool) -> Path:
    """``root/<page>``: a folder that ``fill`` writes, the page executed on it and ``entry`` as ``recorded.json``
    (with the commit that executed the page). Built aside; the previous record is replaced only once the new
    one is complete."""
    target = recorded_dir(page, root)
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{page}-", dir=root))
    try:
        folder = staging / FOLDER
        fill(folder)
        notebook = execute_page(page, folder, progress)
        # shown as where it will live: book/recorded/<page>/folder
        shown = publishable(notebook, folder, os.path.relpath(target / FOLDER, REPO_ROOT))
        (staging / f"{page}.ipynb").write_text(json.dumps(shown, indent=1, ensure_ascii=False) + "\n")
        # The page is kept once, publishable, above (its figures inside it); its tables stay in folder/metrics.
        shutil.rmtree(RunDir(folder).notebooks)
        shutil.rmtree(RunDir(folder).figures, ignore_errors=True)
        write_json(staging / INDEX, {**entry, "executed": _executed_here()})
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def provenance(page: str, root: Path = RECORDED) -> str:
    """The note above a recorded page: where its results came from, and how to get a page of one's own."""
    recorded = index(page, root)
    where = os.path.relpath(recorded_dir(page, root), REPO_ROOT) if recorded_dir(page, root).is_relative_to(REPO_ROOT) \
        else str(recorded_dir(page, root))
    kind = PAGES[page]
    executed = recorded.get("executed") or {}
    by = (f" The page was executed on them at commit `{executed['commit']}`"
          + (f" ({executed['date']})" if executed.get("date") else "") + ", whose rules its verdicts follow."
          if executed.get("commit") else "")
    lines = ["````{note}",
             f"**Recorded results.** This build ran no {kind}, so this page is the one recorded in the repository "
             f"(`{where}/`): executed on the recorded runs' tables, which were measured at commit "
             f"`{recorded['commit']}`" + (f" on {recorded['date']}" if recorded.get("date") else "")
             + f" on {recorded['machine']} by:", "", "```bash", *recorded["commands"], "```", "",
             f"Code changed after that commit (the README's timing paragraph says which changes altered tables), so "
             f"the same seed measured by this build's code can differ in its numbers; the page compares the runs "
             f"of its own folder.{by}", ""]
    if recorded.get("left_out"):
        lines += [f"Left out: {recorded['left_out']}", ""]
    lines += [f"A build whose folder holds {'an' if kind[0] in 'aeiou' else 'a'} {kind} of its own shows that instead "
              + ("(`clipalign run --preset full` runs the whole drivers sweep)." if kind == "sweep" else
                 "(`clipalign experiment quality --out FOLDER`, or `clipalign run --preset full`)."),
              "````"]
    return "\n".join(lines)


def page_with_provenance(page: str, root: Path = RECORDED) -> dict:
    """The recorded executed page with the provenance note as its second cell (after the title)."""
    notebook = json.loads(recorded_notebook(page, root).read_text())
    note = {"cell_type": "markdown", "id": "recorded-provenance", "metadata": {"tags": ["recorded-provenance"]},
            "source": provenance(page, root)}
    notebook["cells"].insert(1, note)
    return notebook


def _executed_here() -> dict:
    """The checkout's commit and today's date: what executed a recorded page."""
    import datetime
    import subprocess

    commit = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    return {"commit": commit or "unknown", "date": datetime.date.today().isoformat()}


def execute_again(page: str, root: Path = RECORDED, progress: bool = False) -> Path:
    """Execute the recorded ``page`` anew on its shipped tables with this checkout's code: its executed notebook
    and its own tables replaced (the runs' tables are those of the recorded commit, untouched), and the
    commit that executed it recorded in ``recorded.json`` (``executed``). The previous record stays until the
    new one is complete."""
    if recorded_notebook(page, root) is None:
        raise ParameterError(f"book/recorded/{page} records no page to execute again")
    shipped = recorded_dir(page, root) / FOLDER
    return _write_record(page, lambda folder: shutil.copytree(shipped, folder, symlinks=True), index(page, root),
                         root, progress)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clipalign_utils.orchestration.recorded",
                                     description="Record a finished sweep or experiment as the book's page.")
    parser.add_argument("page", choices=list(PAGES))
    parser.add_argument("folder", nargs="?", help="the finished sweep or experiment folder")
    parser.add_argument("--again", action="store_true",
                        help="execute the recorded page anew on its shipped tables with this checkout's code")
    parser.add_argument("--command", action="append", help="a command that produced it (repeatable)")
    parser.add_argument("--commit", help="the commit the folder was measured at")
    parser.add_argument("--left-out", default="", help="what the recorded folder leaves out of the named command")
    parser.add_argument("--date", default=None)
    parser.add_argument("--machine", default=None)
    args = parser.parse_args(argv)
    if args.again:
        try:
            target = execute_again(args.page, progress=sys.stderr.isatty())
        except ParameterError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(f"executed {args.page} again in {target}")
        return 0
    if args.folder is None or not args.command or not args.commit:
        parser.error("recording a folder needs FOLDER, --command and --commit (or --again)")
    try:
        target = record_page(args.page, args.folder, args.command, args.commit, args.left_out, args.machine, args.date,
                             progress=sys.stderr.isatty())
    except ParameterError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"recorded {args.page} in {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
