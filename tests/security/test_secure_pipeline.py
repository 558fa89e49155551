"""The whole pipeline over TLS + SASL/SCRAM: collector, agent, SDK, streams, indexer and alerts, each
its own process, all talking to a broker that accepts nothing else; the password reaches them
only through the environment, and no log line shows it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from playscope.stack.manager import StackManager
from playscope.stack.servers import SecureKafkaServer


@pytest.fixture
def secure_broker(tmp_path: Path, stack: StackManager) -> Iterator[SecureKafkaServer]:
    server = SecureKafkaServer.on_free_ports(tmp_path / "kafka", dist_cache=stack.home.resolve() / "dist")
    server.start()
    try:
        server.wait_healthy(timeout_s=120)
        yield server
    finally:
        server.stop()


@pytest.mark.slow
def test_demo_pipeline_runs_end_to_end_over_tls_and_scram(secure_broker: SecureKafkaServer, tmp_path: Path,
                                                          stack: StackManager) -> None:
    sec = secure_broker.client_security()
    password_file = tmp_path / "kafka.password"
    password_file.write_text(sec["password"] + "\n")
    password_file.chmod(0o600)
    config = tmp_path / "secure.yaml"
    config.write_text(yaml.safe_dump({
        "kafka": {"bootstrap": secure_broker.bootstrap, "security": {
            "protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "username": sec["username"],
            "password_file": str(password_file), "ca_file": sec["ca_file"]}},
        "elasticsearch": {"url": stack.settings.elasticsearch.url},
    }))
    cmd = [sys.executable, "-m", "playscope.cli", "demo", "--config", str(config), "--no-stack",
           "--duration", "40", "--window", "5", "--incident-start", "8", "--incident-end", "24", "--rate", "8"]
    home = tmp_path / "home"
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=420,
                          env={**os.environ, "PLAYSCOPE_HOME": str(home)})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    fired = re.search(r"alerts delivered to the webhook: (\d+) firing, (\d+) resolved", out)
    assert fired and int(fired.group(1)) >= 2, out[-3000:]
    assert re.search(r"firing\s+cdn-rebuffering \(cdn=oca-edge-3\)", out), out[-3000:]
    run_dirs = list((home / "demo").iterdir())
    assert len(run_dirs) == 1
    run_config = (run_dirs[0] / "playscope.yaml").read_text()
    assert "SASL_SSL" in run_config and sec["password"] not in run_config
    for log in run_dirs[0].glob("*.log"):
        assert sec["password"] not in log.read_text(errors="replace"), f"password in {log.name}"
    assert sec["password"] not in out
