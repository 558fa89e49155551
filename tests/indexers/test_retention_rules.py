"""Which daily indices retention deletes (pure logic; the sweep itself runs in test_indexer)."""

from __future__ import annotations

from datetime import date

import pytest

from indexers.config import IndexerConfig
from indexers.retention import expired, index_day
from playscope.config import Settings
from playscope.errors import ConfigError


def test_index_day_reads_only_our_names() -> None:
    assert index_day("p-playscope-logs-2024.03.01", "p-") == date(2024, 3, 1)
    assert index_day("p-playscope-deadletter-2024.12.31", "p-") == date(2024, 12, 31)
    assert index_day("playscope-logs-2024.03.01", "p-") is None
    assert index_day("p-playscope-logs-2024.13.01", "p-") is None
    assert index_day("p-playscope-logs-2024.03.01-restored", "p-") is None
    assert index_day("p-other-2024.03.01", "p-") is None


def test_expired_keeps_today_and_the_last_n_days() -> None:
    names = [f"playscope-qoe-2024.03.{d:02d}" for d in range(1, 11)] + ["unrelated-2020.01.01"]
    old = expired(names, "", days=3, today=date(2024, 3, 10))
    assert old == [f"playscope-qoe-2024.03.{d:02d}" for d in range(1, 7)]


def test_config_rejects_unknown_families_and_keys() -> None:
    with pytest.raises(ConfigError, match="unknown families"):
        Settings.model_validate({"indexer": {"families": ["playback", "nope"]}}).section(
            "indexer", IndexerConfig)
    with pytest.raises(ConfigError, match=r"indexer\.batch_size: unknown key"):
        Settings.model_validate({"indexer": {"batch_size": 3}}).section("indexer", IndexerConfig)
    cfg = Settings.model_validate({"indexer": {"batch_max_docs": 10}}).section("indexer", IndexerConfig)
    assert cfg.batch_max_docs == 10
