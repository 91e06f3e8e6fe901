"""An executed notebook as a book shows and offers it: the cell papermill injected hidden, no progress bars,
no absolute paths. Shared by the book's staging (:mod:`.book`) and the recorded pages (:mod:`.recorded`)."""
from __future__ import annotations

import os
import re

from ..registry import REPO_ROOT

# A tqdm refresh: "desc:  40%|████      | 4/10 [00:01<00:02, 2.9it/s]" (or its leave=False blank-out). The
# percentage starts where a run of digits starts, and the bar between its two "|" holds none: searched from every
# digit of a long run, or to the line's end from every "%|", it took quadratic time.
# A count as tqdm draws it: 37, or with unit_scale 412M, 1.23G (a download's bytes)
COUNT = r"\d+(?:\.\d+)?[kMGTPEZY]?"
# (a bar without a total: "unpacking x.rar: 20file [00:01, 19.5file/s]")
PROGRESS_SEGMENT = re.compile(rf"^\s*$|(?<!\d)\d+%\|[^|]*\|\s*{COUNT}/{COUNT}|^[^|\n]*\|\s*{COUNT}/{COUNT} \["
                              rf"|^[^|\n]*: {COUNT}[A-Za-z]* \[\d\d:\d\d")


def _without_progress(text: str) -> str:
    """stderr text without its progress-bar refreshes (every tqdm redraw is a '\\r'-separated segment);
    warnings and other lines stay."""
    lines = []
    for line in text.splitlines(keepends=True):
        end = "\n" if line.endswith("\n") else ""
        kept = [seg for seg in line.rstrip("\n").split("\r") if not PROGRESS_SEGMENT.search(seg)]
        if kept:
            lines.append(kept[-1] + end)
    return "".join(lines)


def _portable(value, replacements: list[tuple[str, str]]):
    """`value` (a notebook's JSON) with the build machine's absolute paths made relative; images untouched."""
    if isinstance(value, str):
        for before, after in replacements:
            value = value.replace(before, after)
        return value
    if isinstance(value, list):
        return [_portable(item, replacements) for item in value]
    if isinstance(value, dict):
        return {key: item if key.startswith("image/") else _portable(item, replacements)
                for key, item in value.items()}
    return value


def publishable(notebook: dict, replacements: list[tuple[str, str]]) -> dict:
    """An executed notebook as the book shows and offers it: the cell papermill injected (it holds the
    build machine's run_dir) removed from the page, no progress bars, no absolute paths."""
    for cell in notebook["cells"]:
        tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
        outputs = []
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                text = _without_progress("".join(output["text"]) if isinstance(output["text"], list) else output["text"])
                if not text.strip():
                    continue
                output = {**output, "text": text}
            outputs.append(output)
        if "outputs" in cell:
            cell["outputs"] = outputs
    return _portable(notebook, replacements)


def path_replacements(pairs) -> list[tuple[str, str]]:
    """``pairs`` of (absolute path, what to show instead) and the checkout itself (shown relative to it),
    longest first, so that a folder inside another is replaced before it. A path papermill escapes in the
    injected cell (é as ``\\xe9``, a quote, a backslash) is also replaced as it is written there."""
    pairs = list(pairs) + [(str(REPO_ROOT) + os.sep, ""), (str(REPO_ROOT), ".")]
    pairs += [(_as_injected(before), _as_injected(after)) for before, after in pairs if _as_injected(before) != before]
    return sorted(set(pairs), key=lambda pair: len(pair[0]), reverse=True)


def _as_injected(text: str) -> str:
    """``text`` as papermill's Python translator writes a string parameter (inside its quotes): escaped,
    its double quotes too."""
    return text.encode("unicode_escape").decode("utf-8").replace('"', r'\"')
