#!/usr/bin/env bash
# Every test: set up (Debian packages, .venv), check the layering contract, run pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
.venv/bin/lint-imports --no-cache >/dev/null || .venv/bin/lint-imports --no-cache
exec .venv/bin/python -m pytest -q "$@"
