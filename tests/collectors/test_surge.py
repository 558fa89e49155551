"""A surge of ten times the sustainable request rate degrades into fast refusals: every request
is answered 202 or 503 (with Retry-After), every event answered 202 is in Kafka, the workers live
and /healthz answers throughout. Latency figures are the benchmark's (bench/surge.py), not
asserted here: this machine is shared and noisy."""

from __future__ import annotations

from bench import surge
from bench.collector import WORKERS
from playscope.config import Settings


def test_ten_times_the_sustainable_rate_is_answered_202_or_503_and_nothing_202_is_lost(
        kafka_settings: Settings) -> None:
    report = surge.run(kafka_settings, quick=True, factor=10.0)
    assert report["requests"] > 0 and report["unanswered"] == 0, report
    assert set(report["statuses"]) == {"202", "503"}, report["statuses"]
    assert report["retry_after_missing"] == 0
    assert report["lost_after_202"] == 0, f"{report['lost_after_202']} events answered 202 are not in Kafka"
    assert report["workers_alive"] == (WORKERS if WORKERS > 1 else 1)
    assert report["healthz_probes"] > 0 and report["healthz_failed"] == 0, report
