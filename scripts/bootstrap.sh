#!/usr/bin/env bash
# Install everything playscope needs on a fresh Debian/Ubuntu machine, idempotently:
# system packages (Java comes with the machine; Maven fetches the servers), a virtualenv with
# playscope and its dev tools. Safe to run again: it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
APT_PACKAGES=(maven kcat prometheus prometheus-alertmanager nginx openssl)  # nginx: the TLS proxy of tests/security

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# Daemons the Debian packages start on install; playscope runs its own instances when needed.
DAEMONS=(prometheus prometheus-alertmanager prometheus-node-exporter nginx)

running() {
  systemctl is-active --quiet "$1" >/dev/null 2>&1 || service "$1" status >/dev/null 2>&1
}

if ((${#missing[@]})); then
  echo "bootstrap: installing system packages: ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  declare -A was_running=()
  for svc in "${DAEMONS[@]}"; do
    if running "$svc"; then was_running[$svc]=1; fi
  done
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Only a daemon this install started is stopped: one that was running before is the machine's own.
  for svc in "${DAEMONS[@]}"; do
    if [ -z "${was_running[$svc]:-}" ] && running "$svc"; then
      echo "bootstrap: stopping $svc, started by its package just now (playscope starts its own)" >&2
      $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || $SUDO service "$svc" stop >/dev/null 2>&1 || true
    fi
  done
fi

if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv" >&2
  "$PY" -m venv .venv
fi
stamp=.venv/.playscope-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "bootstrap: installing Python packages" >&2
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev,report]'
  touch "$stamp"
fi
