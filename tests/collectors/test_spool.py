"""The collector's spool against the real broker: nothing in it can wedge the replay.

Records Kafka refuses for good are quarantined (not retried forever with every later request
queued behind them), a torn last line is cut at start-up, a segment that cannot be read is
quarantined whole, and a write that fails half-way (a full disk) is rolled back. Every segment
created, rewritten, replayed away or moved has its folder fsynced too."""

from __future__ import annotations

import logging
import os
import resource
import signal
import stat
from collections import Counter
from pathlib import Path

import orjson
import pytest
from collector_helpers import read_topic
from helpers import wait_for

from collectors.delivery import DeliveryProducer, Record, encode
from collectors.http.spool import QUARANTINE, Spool, SpoolWriteError, adopt_orphans
from playscope import topics
from playscope.config import Settings
from playscope.kafka import producer_config


def _records(topic: str, count: int, start: int = 0, big: frozenset[int] = frozenset()) -> list[Record]:
    return [(topic, b"k", encode({"seq": i, "pad": "x" * (5000 if i in big else 0)}))
            for i in range(start, start + count)]


def _seqs(settings: Settings, topic: str, expected: int) -> Counter[int]:
    return Counter(r["seq"] for r in read_topic(settings, topic, expected, settle_s=2))


def test_records_kafka_refuses_for_good_are_quarantined_and_the_replay_goes_on(
        kafka_settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = kafka_settings
    topic = settings.topic(topics.PLAYBACK_EVENTS)
    # records over message.max.bytes fail every time; the others are acknowledged
    producer = DeliveryProducer(producer_config(settings.kafka, **{"message.max.bytes": 2000}), client="test")
    big = frozenset({7, 31})
    replayed: list[int] = []
    quarantined: list[int] = []
    spool = Spool(tmp_path, 16 * 1024 * 1024, producer, on_replayed=replayed.append,
                  on_quarantined=quarantined.append)
    caplog.set_level(logging.INFO, logger="playscope.collector.spool")
    try:
        assert spool.append_sync(_records(topic, 60, big=big))
        assert spool.append_sync(_records(topic, 10, start=100))  # a later request, behind the bad ones
        spool.start()
        wait_for(lambda: not spool.pending, 30, "the spool to empty")
    finally:
        spool.stop()
        producer.close(10)
    assert sum(replayed) == 68 and quarantined == [2]
    assert not list(tmp_path.glob("spool-*.ndjson"))
    (kept,) = (tmp_path / QUARANTINE).glob("spool-*.ndjson")
    lines = [orjson.loads(line) for line in kept.read_bytes().splitlines()]
    assert sorted(orjson.loads(value)["seq"] for _topic, _key, value, _reason in lines) == sorted(big)
    assert all("too large" in reason.lower() or "size" in reason.lower() for *_rest, reason in lines)
    seqs = _seqs(settings, topic, 68)
    assert seqs == Counter(set(range(60)) - big | set(range(100, 110))), "a record was lost or sent twice"
    assert [r for r in caplog.records if r.getMessage() == "spool.quarantined"]


def test_a_torn_last_line_is_cut_at_start_up_and_the_rest_replayed(kafka_settings: Settings,
                                                                     tmp_path: Path) -> None:
    settings = kafka_settings
    topic = settings.topic(topics.PLAYBACK_EVENTS)
    producer = DeliveryProducer(producer_config(settings.kafka), client="test")
    try:
        first = Spool(tmp_path, 16 * 1024 * 1024, producer)
        assert first.append_sync(_records(topic, 20))
        (segment,) = tmp_path.glob("spool-*.ndjson")
        with open(segment, "ab") as handle:  # a crash (or a full disk) in the middle of a write
            handle.write(b'["' + topic.encode() + b'","k","{\\"seq\\":99')
        spool = Spool(tmp_path, 16 * 1024 * 1024, producer)  # the restart
        assert segment.read_bytes().endswith(b"\n")
        spool.start()
        wait_for(lambda: not spool.pending, 30, "the spool to empty")
        spool.stop()
    finally:
        producer.close(10)
    assert _seqs(settings, topic, 20) == Counter(range(20))


def test_a_segment_that_cannot_be_read_is_quarantined_and_later_ones_replayed(
        kafka_settings: Settings, tmp_path: Path) -> None:
    settings = kafka_settings
    topic = settings.topic(topics.PLAYBACK_EVENTS)
    (tmp_path / "spool-000000000000.ndjson").write_bytes(b'["t","k","{}"]\nnot json at all\n')
    producer = DeliveryProducer(producer_config(settings.kafka), client="test")
    quarantined: list[int] = []
    try:
        spool = Spool(tmp_path, 16 * 1024 * 1024, producer, on_quarantined=quarantined.append)
        assert spool.append_sync(_records(topic, 5))
        spool.start()
        wait_for(lambda: not spool.pending, 30, "the spool to empty")
        spool.stop()
    finally:
        producer.close(10)
    assert quarantined == [2]
    assert (tmp_path / QUARANTINE / "spool-000000000000.ndjson").is_file()
    assert _seqs(settings, topic, 5) == Counter(range(5))


def test_a_failed_write_is_rolled_back_and_the_spool_keeps_working(kafka_settings: Settings,
                                                                    tmp_path: Path) -> None:
    """A real short write: the file size limit (RLIMIT_FSIZE) makes the kernel write part of
    the batch and then refuse the rest (EFBIG), as a full disk does (ENOSPC)."""
    settings = kafka_settings
    topic = settings.topic(topics.PLAYBACK_EVENTS)
    producer = DeliveryProducer(producer_config(settings.kafka), client="test")
    try:
        spool = Spool(tmp_path, 16 * 1024 * 1024, producer)
        assert spool.append_sync(_records(topic, 10))
        (segment,) = tmp_path.glob("spool-*.ndjson")
        size = segment.stat().st_size
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size + 300, hard))
        try:
            with pytest.raises(SpoolWriteError):
                spool.append_sync(_records(topic, 50, start=10))
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
            signal.signal(signal.SIGXFSZ, previous)
        assert segment.stat().st_size == size, "half a batch stayed in the segment"
        assert spool.append_sync(_records(topic, 5, start=100))  # the disk has room again
        restarted = Spool(tmp_path, 16 * 1024 * 1024, producer)
        restarted.start()
        wait_for(lambda: not restarted.pending, 30, "the spool to empty")
        restarted.stop()
    finally:
        producer.close(10)
    assert _seqs(settings, topic, 15) == Counter([*range(10), *range(100, 105)])
    assert os.listdir(tmp_path) == []


def _record_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every os.fsync from now on, as ("dir" or "file", the path of the descriptor)."""
    calls: list[tuple[str, str]] = []
    real = os.fsync

    def recording(fd: int) -> None:
        kind = "dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        calls.append((kind, os.readlink(f"/proc/self/fd/{fd}")))
        real(fd)

    monkeypatch.setattr(os, "fsync", recording)
    return calls


def test_the_folder_is_fsynced_when_a_segment_is_created_rewritten_or_replayed_away(
        kafka_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file's fsync does not make its name durable: without the folder's, a power cut can
    lose a new segment of acknowledged records, or bring back one Kafka already has."""
    settings = kafka_settings
    topic = settings.topic(topics.PLAYBACK_EVENTS)
    calls = _record_fsyncs(monkeypatch)
    folder = tmp_path / "spool"
    producer = DeliveryProducer(producer_config(settings.kafka, **{"message.max.bytes": 2000}), client="test")
    try:
        spool = Spool(folder, 16 * 1024 * 1024, producer)
        assert calls == [("dir", str(tmp_path))], "the spool folder's own name"
        calls.clear()
        assert spool.append_sync(_records(topic, 5))
        (segment,) = folder.glob("spool-*.ndjson")
        assert calls == [("file", str(segment)), ("dir", str(folder))], "a new segment's name is durable"
        calls.clear()
        assert spool.append_sync(_records(topic, 5, start=5))
        assert calls == [("file", str(segment))], "an append to an existing segment creates no name"
        calls.clear()
        spool._keep(segment, _records(topic, 3, big=frozenset({1})))  # as after a partial replay
        assert calls == [("file", str(segment.with_suffix(".tmp"))), ("dir", str(folder))]
        calls.clear()
        spool.start()  # record 1 is refused for good: quarantined, then the segment deleted
        wait_for(lambda: not segment.exists() and calls and calls[-1] == ("dir", str(folder)), 30,
                 "the replayed segment's deletion to be fsynced")
        spool.stop()
    finally:
        producer.close(10)
    quarantine = folder / QUARANTINE
    assert calls[:3] == [("dir", str(folder)), ("file", str(quarantine / segment.name)), ("dir", str(quarantine))]
    assert _seqs(settings, topic, 2) == Counter([0, 2])


def test_adopted_segments_are_fsynced_in_their_new_folder_and_the_old_one(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    gone = tmp_path / "worker-3"
    gone.mkdir()
    (gone / "spool-000000000000.ndjson").write_bytes(b'["t",null,"{}"]\n')
    calls = _record_fsyncs(monkeypatch)
    assert adopt_orphans(tmp_path, 2) == 1
    target = tmp_path / "worker-1"
    assert (target / "spool-000000000000.ndjson").is_file() and not gone.exists()
    assert calls == [("dir", str(tmp_path)), ("dir", str(target)), ("dir", str(gone)), ("dir", str(tmp_path))]
