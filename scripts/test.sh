#!/usr/bin/env bash
# The README's test command: install what the tests need, then run them all.
# Under CI=true a missing tool fails the run instead of skipping a test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-tests.sh
.venv/bin/python -m pytest -q "$@"
