#!/usr/bin/env bash
# Install everything incident-bot needs on a fresh Debian 12 machine; safe to run again.
#  - Debian packages for the real components the tests and the sandbox run
#    (etcd, Prometheus, Alertmanager, HAProxy, Chromium for the HTML export check);
#  - a virtual environment in .venv with the project and its test dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_PACKAGES=(etcd-server etcd-client prometheus prometheus-alertmanager haproxy socat chromium)
NEEDED_BINARIES=(etcd etcdctl prometheus promtool prometheus-alertmanager amtool haproxy socat chromium)

missing=()
for bin in "${NEEDED_BINARIES[@]}"; do
  command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || missing+=("$bin")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages (missing: ${missing[*]})" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${DEB_PACKAGES[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv" >&2
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "setup: installing Python packages into .venv" >&2
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e '.[test]'
  rm -f .venv/.installed-* && touch "$stamp"
fi
