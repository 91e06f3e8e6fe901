"""Where the project lives: one setting, and every place that names it.

The setting is ``pyproject.toml``'s ``[project.urls] Repository`` (a GitHub URL); the package
``version`` gives the release tag ``v<version>``. Every other place is written from them by
``python scripts/set_repository.py [URL]`` and checked against them by the test suite:

- ``pyproject.toml``: ``[project.urls]`` Repository and Documentation (the published book);
- ``_config.yml``: ``repository.url`` and ``repository.branch`` (the tag: the book's Colab buttons
  open ``<url>/blob/<tag>/notebooks/<name>.ipynb``, the release the notebook installs);
- ``notebooks/*.py`` and their ``.ipynb`` twins: the Colab install line
  ``subprocess.run([sys.executable, "-m", "pip", "install", "-q", "clipalign @ git+<url>@<tag>"], check=True)``;
- ``README.md``: the repository and published-book addresses in "Publishing the book".

Standard library only (the script loads this file without installing the package).
"""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "clipalign"

_GITHUB = re.compile(r"^https://github\.com/([A-Za-z0-9-]+)/([A-Za-z0-9._-]+?)/?$")
# The install line as it appears in a notebook's .py source and, JSON-escaped, in its .ipynb twin.
_INSTALL = re.compile(r'clipalign @ git\+([^"@\\\s]+)@([^"\\\s]+)')
_REPO_ADDRESS = re.compile(r"https://github\.com/[\w.-]+/[\w.-]+")
_PAGES_ADDRESS = re.compile(r"https://[\w.-]+\.github\.io/[\w./-]*")
PUBLISHING = "## Publishing the book"


def _addresses(text: str, pattern: re.Pattern) -> list[str]:
    """The addresses `pattern` finds in `text`, without a sentence's closing period."""
    return [address.rstrip(".") for address in pattern.findall(text)]


def _publishing_section(root: Path) -> str:
    """README.md's "Publishing the book" section (empty when it has none)."""
    text = (root / "README.md").read_text()
    start = text.find(PUBLISHING)
    if start < 0:
        return ""
    following = re.search(r"^## ", text[start + len(PUBLISHING):], re.M)
    return text[start:start + len(PUBLISHING) + following.start()] if following else text[start:]


def _section(text: str, name: str) -> tuple[int, int]:
    """Start and end offsets of a TOML table's body (``[name]`` up to the next table)."""
    match = re.search(rf"^\[{re.escape(name)}\]\s*$", text, re.M)
    if not match:
        return -1, -1
    following = re.search(r"^\[", text[match.end():], re.M)
    return match.end(), match.end() + following.start() if following else len(text)


def read_setting(root: Path = ROOT) -> tuple[str, str]:
    """(repository URL, release tag) as pyproject.toml states them."""
    text = (root / "pyproject.toml").read_text()
    start, end = _section(text, "project.urls")
    url = re.search(r'^Repository\s*=\s*"([^"]*)"', text[start:end], re.M) if start >= 0 else None
    if not url:
        raise ValueError("pyproject.toml has no [project.urls] Repository: "
                         "run python scripts/set_repository.py https://github.com/OWNER/NAME")
    project_start, project_end = _section(text, "project")
    version = re.search(r'^version\s*=\s*"([^"]+)"', text[project_start:project_end], re.M)
    return url.group(1), f"v{version.group(1)}"


def parts(url: str) -> tuple[str, str]:
    """(owner, name) of a GitHub repository URL."""
    match = _GITHUB.match(url)
    if not match:
        raise ValueError(f"{url!r} is not a GitHub repository URL (https://github.com/OWNER/NAME)")
    owner, name = match.groups()
    return owner, name.removesuffix(".git")


def pages_url(url: str) -> str:
    """The GitHub Pages address of a repository's site: https://OWNER.github.io/NAME/."""
    owner, name = parts(url)
    if name.lower() == f"{owner.lower()}.github.io":  # a user or organisation site
        return f"https://{owner.lower()}.github.io/"
    return f"https://{owner.lower()}.github.io/{name}/"


def install_line(url: str, tag: str) -> str:
    """The Colab cell's install command: the package at the release tag, Colab's torch left alone; plain
    Python (pip run by the kernel's interpreter, as ``%pip`` does), so the notebook's ``.py`` stays Python."""
    return (f'subprocess.run([sys.executable, "-m", "pip", "install", "-q", "{PACKAGE} @ git+{url}@{tag}"], '
            f'check=True)')


def colab_url(url: str, tag: str, notebook: str) -> str:
    """Where the book's Colab button for notebooks/<notebook>.ipynb points."""
    owner, name = parts(url)
    return f"https://colab.research.google.com/github/{owner}/{name}/blob/{tag}/notebooks/{notebook}.ipynb"


def _notebooks(root: Path) -> list[Path]:
    return sorted(p for p in (root / "notebooks").glob("*") if p.suffix in (".py", ".ipynb"))


def places(root: Path = ROOT) -> dict[str, set[tuple[str, str]] | set[str]]:
    """What each place names now: {place: {(url, tag)} or {url}}."""
    found: dict = {}
    text = (root / "pyproject.toml").read_text()
    start, end = _section(text, "project.urls")
    urls = dict(re.findall(r'^(\w+)\s*=\s*"([^"]*)"', text[start:end], re.M)) if start >= 0 else {}
    found["pyproject.toml [project.urls] Repository"] = {urls.get("Repository")}
    config = (root / "_config.yml").read_text()
    block = config[re.search(r"^repository:\s*$", config, re.M).end():]
    block = block[:m.start()] if (m := re.search(r"^\S", block, re.M)) else block
    url = re.search(r"^\s+url:\s*(\S+)", block, re.M)
    branch = re.search(r"^\s+branch:\s*(\S+)", block, re.M)
    found["_config.yml repository.url/branch"] = {(url and url.group(1), branch and branch.group(1))}
    for path in _notebooks(root):
        found[f"notebooks/{path.name} install line"] = set(_INSTALL.findall(path.read_text())) or {None}
    found["README.md Publishing the book"] = set(_addresses(_publishing_section(root), _REPO_ADDRESS))
    return found


def disagreements(root: Path = ROOT) -> list[str]:
    """One line per place that names another repository, tag or book address than the setting."""
    url, tag = read_setting(root)
    text = (root / "pyproject.toml").read_text()
    start, end = _section(text, "project.urls")
    documentation = re.search(r'^Documentation\s*=\s*"([^"]*)"', text[start:end], re.M)
    problems = []
    if not documentation or documentation.group(1) != pages_url(url):
        problems.append(f"pyproject.toml [project.urls] Documentation should be {pages_url(url)}")
    for place, named in places(root).items():
        expected = url if place.startswith(("pyproject", "README")) else (url, tag)
        if named != {expected}:
            problems.append(f"{place} names {', '.join(map(str, sorted(named, key=str)))}; "
                            f"the setting is {expected}")
    if set(_addresses(_publishing_section(root), _PAGES_ADDRESS)) != {pages_url(url)}:
        problems.append(f"README.md's {PUBLISHING!r} should name the published book as {pages_url(url)} "
                        f"(and no other address)")
    return problems


def _set_urls(text: str, url: str) -> str:
    """pyproject.toml with [project.urls] holding Repository and Documentation for `url`."""
    values = {"Repository": url, "Documentation": pages_url(url)}
    start, end = _section(text, "project.urls")
    if start < 0:
        body = "".join(f'{key} = "{value}"\n' for key, value in values.items())
        anchor = _section(text, "project")[1]
        return text[:anchor].rstrip("\n") + "\n\n[project.urls]\n" + body + "\n" + text[anchor:].lstrip("\n")
    body = text[start:end]
    for key, value in values.items():
        line = f'{key} = "{value}"'
        if re.search(rf"^{key}\s*=", body, re.M):
            body = re.sub(rf"^{key}\s*=.*$", line, body, count=1, flags=re.M)
        else:
            body = body.rstrip("\n") + "\n" + line + "\n\n"
    return text[:start] + body + text[end:]


def write(url: str | None = None, root: Path = ROOT) -> list[Path]:
    """Set the repository URL (None: keep pyproject's) and rewrite every place from it; return changed files."""
    changed = []
    if url is not None:
        parts(url)  # raises for a URL that is not a GitHub repository
        url = url.rstrip("/").removesuffix(".git")
        path = root / "pyproject.toml"
        text = path.read_text()
        if _set_urls(text, url) != text:
            path.write_text(_set_urls(text, url))
            changed.append(path)
    url, tag = read_setting(root)
    old = {u for named in places(root).values() for item in named if item
           for u in ([item[0]] if isinstance(item, tuple) else [item]) if u and u != url}

    def rewrite(path: Path, text: str) -> None:
        if text != path.read_text():
            path.write_text(text)
            changed.append(path)

    path = root / "pyproject.toml"
    rewrite(path, _set_urls(path.read_text(), url))
    path = root / "_config.yml"
    text = path.read_text()
    head, sep, rest = text.partition("\nrepository:\n")
    block_end = m.start() if (m := re.search(r"^\S", rest, re.M)) else len(rest)
    block = re.sub(r"^(\s+url:\s*)\S+", rf"\g<1>{url}", rest[:block_end], count=1, flags=re.M)
    block = re.sub(r"^(\s+branch:\s*)\S+", rf"\g<1>{tag}", block, count=1, flags=re.M)
    rewrite(path, head + sep + block + rest[block_end:])
    for path in _notebooks(root):
        rewrite(path, _INSTALL.sub(f"{PACKAGE} @ git+{url}@{tag}", path.read_text()))
    path = root / "README.md"
    text = path.read_text()
    for before in sorted(old, key=len, reverse=True):
        text = text.replace(before, url)
        try:
            text = text.replace(pages_url(before), pages_url(url))
        except ValueError:
            pass
    section = _publishing_section(root)
    if section:
        fixed = _PAGES_ADDRESS.sub(lambda m: pages_url(url) + m.group(0)[len(m.group(0).rstrip(".")):], section)
        text = text.replace(section, fixed)
    rewrite(path, text)
    return changed
