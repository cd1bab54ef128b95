#!/usr/bin/env bash
# Install everything incident-bot needs on a fresh Debian 12 machine; safe to run again.
#  - Debian packages for the real components the tests and the sandbox run
#    (Prometheus, Alertmanager, HAProxy, PostgreSQL, Chromium for the HTML and web board checks);
#  - PostgreSQL's server binaries (the tests start their own throwaway server; none is left running);
#  - kube-apiserver, kube-controller-manager, kube-scheduler and etcd 3.6 built from their Go modules
#    into a cache outside the repository (scripts/build-go.sh, pinned in scripts/versions.env);
#  - a virtual environment in .venv with the project and its test dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_PACKAGES=(python3-venv postgresql prometheus prometheus-alertmanager haproxy socat chromium openssl)
NEEDED_BINARIES=(prometheus promtool prometheus-alertmanager amtool haproxy socat chromium openssl)

missing=()
for bin in "${NEEDED_BINARIES[@]}"; do
  command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || missing+=("$bin")
done
compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null || missing+=(pg_ctl)
python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
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
  # setuptools >= 77 reads the SPDX license field; the wheel test builds without isolation
  .venv/bin/python -m pip install -q --upgrade pip "setuptools>=77" wheel >/dev/null
  .venv/bin/python -m pip install -q -e '.[test]'
  rm -f .venv/.installed-* && touch "$stamp"
fi

./scripts/build-go.sh
