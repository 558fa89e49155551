"""``bench --peers``: a broken peer gives its stage an error and the others still run; the
end-offset count the peer runs are timed by; rsyslog accepts the config the agent peer writes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from confluent_kafka import Producer

from bench import peers
from bench.peers import agent_rsyslog
from bench.peers.common import EndOffsets, PeerError
from playscope import topics
from playscope.config import Settings, load_settings
from playscope.kafka import producer_config


def test_a_failing_peer_is_an_error_of_its_stage_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "peer_ok.py").write_text("PEER = 'ok'\ndef run(settings, quick, stage):\n"
                                         "    return {'seen': stage.get('x'), 'quick': quick}\n")
    (tmp_path / "peer_broken.py").write_text("PEER = 'broken'\ndef run(settings, quick, stage):\n"
                                             "    raise RuntimeError('cannot install')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(peers, "PEERS", {"agent": "peer_broken", "streams": "peer_ok", "indexer": "no_such_peer"})
    made: list[str] = []
    cleaned: list[Settings] = []

    def stage_settings(stage: str) -> Settings:
        made.append(stage)
        return load_settings(environ={}).model_copy(update={"topic_prefix": f"{stage}."})

    out = peers.run(["agent", "streams", "indexer", "alerting"], True, {"streams": {"x": 7}},
                    stage_settings, cleaned.append, log=lambda _m: None)
    assert out["agent"] == {"peer": "broken", "error": "RuntimeError: cannot install"}
    assert out["streams"] == {"peer": "ok", "seen": 7, "quick": True}
    assert out["indexer"]["error"].startswith("ModuleNotFoundError")
    assert "alerting" not in out  # no peer registered for it
    assert made == ["peers-agent", "peers-streams"]
    assert [s.topic_prefix for s in cleaned] == ["peers-agent.", "peers-streams."]


def test_end_offsets_count_what_the_broker_acknowledged(kafka_settings: Settings) -> None:
    topic = kafka_settings.topic(topics.SERVICE_LOGS)
    producer = Producer(producer_config(kafka_settings.kafka))
    for i in range(5):
        producer.produce(topic, b"%d" % i, partition=i % 3)
    assert producer.flush(30) == 0
    counter = EndOffsets(kafka_settings, topic)
    try:
        assert counter.total() == 5
        assert counter.wait_for(5, 10) > 0
        with pytest.raises(PeerError, match="5 of 6 records"):
            counter.wait_for(6, 0.5)
        with pytest.raises(PeerError, match="exited"):
            counter.wait_for(6, 10, alive=lambda: False)
    finally:
        counter.close()


@pytest.mark.skipif(shutil.which("rsyslogd") is None or not agent_rsyslog._installed(),
                    reason="rsyslog with omkafka not installed (scripts/install-peers.sh)")
def test_rsyslog_accepts_the_agent_peer_config(tmp_path: Path) -> None:
    conf = tmp_path / "rsyslog.conf"
    conf.write_text(agent_rsyslog.CONF.format(work=tmp_path, broker="127.0.0.1:9092", topic="t", path=tmp_path / "x"))
    done = subprocess.run(["rsyslogd", "-N1", "-f", str(conf)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    broken = tmp_path / "broken.conf"
    broken.write_text(conf.read_text().replace('template="line"', 'template="nope"'))
    assert subprocess.run(["rsyslogd", "-N1", "-f", str(broken)], capture_output=True).returncode != 0

