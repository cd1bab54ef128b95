#!/usr/bin/env bash
# The main job: set up, then run incident-bot's console chat on the embedded SQLite database.
# On a terminal it is interactive; with a pipe it plays the lines it is given, e.g.
#   ./scripts/main.sh < examples/first-incident.txt
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/incident-bot console "$@"
