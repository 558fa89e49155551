#!/usr/bin/env bash
# The tools `playscope bench --peers` compares playscope with, installed the way a user would.
# The bench installs them itself on first use (as root, or with passwordless sudo); this script
# does it ahead of time. Not part of bootstrap.sh or CI.
#   wrk                       Debian package (the HTTP load client for the collector stage)
#   rsyslog + rsyslog-kafka   Debian packages (imfile -> omkafka, the agent stage's peer)
#   OpenTelemetry Collector   built from its Go modules, bench/peers/otelcol/ (needs Go 1.26+)
#   Quix Streams             PyPI, bench/peers/requirements.txt, in a venv of its own
set -euo pipefail
cd "$(dirname "$0")/.."
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk rsyslog rsyslog-kafka
# the Go build and the Quix Streams venv, cached under PLAYSCOPE_HOME/peers (else ~/.cache/playscope/peers)
.venv/bin/python - <<'PY'
from bench.peers import collector_otelcol, streams_quix
from playscope.config import load_settings

settings = load_settings()
print("otelcol:", collector_otelcol.build(settings))
print("quixstreams:", streams_quix.venv(settings))
PY
