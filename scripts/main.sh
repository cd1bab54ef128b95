#!/usr/bin/env bash
# The main job: set up, then rehearse the 1-5-10 end to end on a local control plane.
# A fault drill starts a sandbox (etcd 3.6 x3, two main and one bypass kube-apiserver behind HAProxy,
# Prometheus, Alertmanager and the bot, all on loopback in a temporary directory; kube-apiserver and
# etcd are built from their Go modules by setup), injects a fault, lets the bot detect, diagnose,
# propose, auto-approve and recover, prints the scorecard, writes the post-mortem under ./drills/,
# and removes everything it started.
#   ./scripts/main.sh                   # the default drill: apiserver-down -> failover-apiserver
#   ./scripts/main.sh client-flood      # or etcd-member-down, etcd-quorum-loss
# For interactive use afterwards: .venv/bin/incident-bot console (or: incident-bot sandbox).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
scenario="${1:-apiserver-down}"
status=0
.venv/bin/incident-bot drill "$scenario" || status=$?
cat <<'TIP'

Interactive use:
  .venv/bin/incident-bot console    # the bot with a terminal chat (e.g. < examples/first-incident.txt)
  .venv/bin/incident-bot sandbox    # a local control plane + the bot + the console chat
TIP
exit "$status"
