#!/usr/bin/env bash
# Every test: set up (Debian packages, .venv), check the layering contract and the types, run pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
.venv/bin/lint-imports --no-cache >/dev/null || .venv/bin/lint-imports --no-cache
.venv/bin/mypy  # bot, playbooks, integrations ([tool.mypy] in pyproject.toml): one error fails the run
exec .venv/bin/python -m pytest -q --durations=25 "$@"  # the slowest 25 are listed: where the run's time goes
