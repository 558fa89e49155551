"""Log shipping peer: rsyslog (imfile -> omkafka, acks=all) next to ``playscope agent`` on the
same JSON log file, each timed from process start until every line is in Kafka (counted by the
topic's end offsets, so neither side's own bookkeeping is trusted)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench.agent import write_log
from bench.peers.common import EndOffsets, PeerError, ensure_apt, sample
from playscope import topics
from playscope.config import Settings
from playscope.provision import ensure_topics

PEER = "rsyslog-omkafka"

# the same producer settings as playscope's (playscope/kafka.py): durable, lz4, 5 ms linger
CONF = """global(workDirectory="{work}" maxMessageSize="64k")
module(load="imfile" mode="inotify")
module(load="omkafka")
template(name="line" type="string" string="%msg%")
ruleset(name="ship") {{
  action(type="omkafka" broker=["{broker}"] topic="{topic}" template="line" partitions.auto="on"
         confParam=["acks=all", "enable.idempotence=true", "compression.codec=lz4", "linger.ms=5"])
}}
input(type="imfile" File="{path}" Tag="bench" ruleset="ship" freshStartTail="off" addMetadata="off")
"""


def _installed() -> bool:
    """rsyslogd and its omkafka module (Debian's rsyslog-kafka) are both there."""
    modules = [*Path("/usr/lib").glob("*/rsyslog/omkafka.so"), *Path("/usr/lib/rsyslog").glob("omkafka.so")]
    return shutil.which("rsyslogd") is not None and bool(modules)


def _timed(command: list[str], env: dict[str, str], counter: EndOffsets, lines: int, log: Path) -> float:
    """Lines/s from starting ``command`` until ``lines`` records are in the counter's topic."""
    with open(log, "wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            done = counter.wait_for(lines, 600, alive=lambda: proc.poll() is None)
        except PeerError as exc:
            raise PeerError(f"{exc}: {log.read_text()[-500:]}") from None
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
    return lines / (done - started)


def _playscope(settings: Settings, path: Path, tmp: Path, lines: int) -> float:
    config = tmp / "agent.yaml"
    config.write_text(yaml.safe_dump({"inputs": [{"paths": [str(path)], "service": "bench"}],
                                      "checkpoint_file": str(tmp / "ckpt.json"), "metrics_port": 0,
                                      "sink": {"deadletter_file": str(tmp / "deadletter.ndjson")}}))
    env = {**os.environ, "PLAYSCOPE_KAFKA": settings.kafka.bootstrap,
           "PLAYSCOPE__TOPIC_PREFIX": settings.topic_prefix}
    counter = EndOffsets(settings, settings.topic(topics.SERVICE_LOGS))
    try:
        command = [sys.executable, "-m", "playscope.cli", "agent", "-c", str(config), "--log-level", "WARNING"]
        return _timed(command, env, counter, lines, tmp / "agent.log")
    finally:
        counter.close()


def _rsyslog(settings: Settings, path: Path, tmp: Path, lines: int) -> float:
    peer = settings.model_copy(update={"topic_prefix": f"{settings.topic_prefix}rsyslog."})
    ensure_topics(peer)  # the same partitions and topic config as the agent's topic
    topic = peer.topic(topics.SERVICE_LOGS)
    work = tmp / "rsyslog"
    work.mkdir()
    conf = tmp / "rsyslog.conf"
    conf.write_text(CONF.format(work=work, broker=settings.kafka.bootstrap.split(",")[0], topic=topic, path=path))
    check = subprocess.run(["rsyslogd", "-N1", "-f", str(conf)], capture_output=True, text=True)
    if check.returncode != 0:
        raise PeerError(f"rsyslogd refused its config: {(check.stdout + check.stderr).strip()[-500:]}")
    counter = EndOffsets(peer, topic)
    try:
        command = ["rsyslogd", "-n", "-f", str(conf), "-i", str(tmp / "rsyslogd.pid")]
        rate = _timed(command, dict(os.environ), counter, lines, tmp / "rsyslog.log")
    finally:
        counter.close()
    record = sample(peer, topic)
    if not record.startswith(b'{"ts":'):  # each line as it is in the file, not a syslog frame around it
        raise PeerError(f"rsyslog wrote {record[:120]!r}, not the log line")
    return rate


def run(settings: Settings, quick: bool, stage: dict[str, Any]) -> dict[str, Any]:
    ensure_apt(["rsyslog", "rsyslog-kafka"], _installed)
    ensure_topics(settings)
    lines = 200_000 if quick else 1_000_000
    with tempfile.TemporaryDirectory(prefix="bench-peers-agent-") as name:
        tmp = Path(name)
        path = tmp / "bench.log"
        write_log(path, lines)
        rate = _playscope(settings, path, tmp, lines)
        peer_rate = _rsyslog(settings, path, tmp, lines)
    return {"peer_lines_per_s": round(peer_rate), "lines_per_s": round(rate), "ratio": round(rate / peer_rate, 3),
            "lines": lines}
