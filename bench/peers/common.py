"""What the peer runs share: where installed peers are cached, installing a Debian package the
way a user would, and counting what reached a topic by its end offsets."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from confluent_kafka import Consumer, KafkaException, TopicPartition

from playscope.config import Settings
from playscope.kafka import consumer_config


class PeerError(RuntimeError):
    """A peer could not be installed or run; the message says what to do."""


def cache_dir(settings: Settings) -> Path:
    """``$PLAYSCOPE_HOME/peers`` (the local stack's home), else ``~/.cache/playscope/peers``."""
    home = Path(os.environ.get("PLAYSCOPE_HOME") or settings.home)
    base = home if home.is_dir() else Path.home() / ".cache" / "playscope"
    path = (base / "peers").resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def ensure_apt(packages: list[str], present: Callable[[], bool]) -> None:
    """``apt-get install -y packages`` unless ``present()`` already holds (as root, else with
    ``sudo -n``); refreshes the package lists once if the first try fails."""
    if present():
        return
    if shutil.which("apt-get") is None:
        raise PeerError(f"{' '.join(packages)} missing and no apt-get here: install them by hand")
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    if sudo and shutil.which("sudo") is None:
        raise PeerError(f"{' '.join(packages)} missing: run scripts/install-peers.sh as root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*sudo, "apt-get", "install", "-y", "-qq", *packages]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run([*sudo, "apt-get", "update", "-qq"], env=env, capture_output=True)
        done = subprocess.run(install, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise PeerError(f"apt-get install {' '.join(packages)} failed: {done.stderr.strip()[-300:]}")
    if not present():
        raise PeerError(f"{' '.join(packages)} installed but still not usable")


class EndOffsets:
    """Records in a topic, as the sum of its partitions' high watermarks: what the broker has
    acknowledged, whoever wrote it, without consuming anything."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.topic = topic
        self.consumer = Consumer(consumer_config(settings.kafka, f"{settings.topic_prefix}peers-offsets"))
        meta = self.consumer.list_topics(topic, timeout=30).topics[topic]
        self.partitions = [TopicPartition(topic, p) for p in sorted(meta.partitions)]

    def total(self) -> int:
        return sum(self.consumer.get_watermark_offsets(tp, timeout=10, cached=False)[1] for tp in self.partitions)

    def wait_for(self, count: int, timeout_s: float, alive: Callable[[], bool] = lambda: True) -> float:
        """Seconds (perf_counter) at which the topic first held ``count`` records."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if self.total() >= count:
                    return time.perf_counter()
            except KafkaException:  # a topic created a moment ago may have no leader yet
                pass
            if not alive():
                raise PeerError(f"the process exited before {count} records were in {self.topic}")
            time.sleep(0.02)
        raise PeerError(f"{self.total()} of {count} records in {self.topic} after {timeout_s:.0f} s")

    def close(self) -> None:
        self.consumer.close()


def sample(settings: Settings, topic: str, timeout_s: float = 10.0) -> bytes:
    """One record's value from ``topic``, to check a peer wrote what it was given."""
    consumer = Consumer(consumer_config(settings.kafka, f"{settings.topic_prefix}peers-sample"))
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                return message.value() or b""
        raise PeerError(f"no record could be read back from {topic}")
    finally:
        consumer.close()
