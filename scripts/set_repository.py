"""Set where the project lives, and rewrite every place that names it.

    python scripts/set_repository.py https://github.com/OWNER/NAME   # a fork: point everything at it
    python scripts/set_repository.py                                 # re-sync from pyproject.toml
    python scripts/set_repository.py --check                         # list disagreements; exit 1 if any

The one setting is pyproject.toml's [project.urls] Repository (and the package version, whose tag
v<version> the notebooks install and the book's Colab buttons open). This writes it into
_config.yml (repository.url and .branch), every notebook's Colab install line (.py and .ipynb
twin), pyproject's Documentation address and README's "Publishing the book". Standard library only.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Load the module by path: the package need not be installed, nor its dependencies importable.
_spec = importlib.util.spec_from_file_location("_clipalign_repository", ROOT / "clipalign_utils" / "repository.py")
repository = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(repository)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--check"]:
        problems = repository.disagreements(ROOT)
        print("\n".join(problems) if problems else "every place names " + " @ ".join(repository.read_setting(ROOT)))
        return 1 if problems else 0
    if len(argv) > 1 or (argv and argv[0].startswith("-")):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        changed = repository.write(argv[0] if argv else None, ROOT)
    except ValueError as error:
        print(f"set_repository: {error}", file=sys.stderr)
        return 2
    url, tag = repository.read_setting(ROOT)
    for path in changed:
        print(f"rewrote {path.relative_to(ROOT)}")
    print(f"repository {url}, release tag {tag}; the book will be published at {repository.pages_url(url)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
