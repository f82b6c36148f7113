#!/usr/bin/env bash
# Installs everything the tests need, on a fresh Debian machine or a developer's:
#   - Debian's chromium (real browser checks, driven by playwright)
#   - a virtual environment in .venv with the project and its test extras,
#     at the exact versions in requirements/constraints.txt
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_missing=()
command -v chromium >/dev/null 2>&1 || apt_missing+=(chromium)
if [ "${#apt_missing[@]}" -gt 0 ]; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    echo "Installing Debian packages: ${apt_missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        "${apt_missing[@]}" >/dev/null
fi

python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -c requirements/constraints.txt -e '.[test]'
