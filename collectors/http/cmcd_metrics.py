"""Counters of the CMCD mapping. Every label value comes from a fixed set, never from the client."""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter

# CMCD keys the mapping reads; any other key is counted as "other".
KNOWN_KEYS: Final = frozenset({
    "bl", "br", "bs", "cdn", "cid", "d", "dl", "e", "ec", "mtp", "nor", "ot", "pb", "sf", "sid", "sn",
    "st", "sta", "su", "ts", "ttfb", "ttlb", "url", "v", "dimension",
})
REASONS: Final = frozenset({
    "wrong_type",       # a string where a number belongs, say
    "negative",         # bl=-5
    "out_of_range",     # more digits than RFC 8941 allows, or above the SPEC 4 measure bound
    "unknown_value",    # sta=z, ot=q, sf=x
    "v1_ts",            # v1 has no timestamp: the receive time is used
    "epoch_value",      # dash.js sends ttfb as a time of day, not a duration
    "invalid",          # a dimension from a header or query argument that SPEC 4 would refuse
})


class CmcdMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.ignored = Counter(
            "playscope_collector_cmcd_ignored_total",
            "CMCD values ignored (the rest of the report is kept), by key and reason",
            ["key", "reason"], registry=registry,
        )
        self.stalls = Counter(
            "playscope_collector_cmcd_v1_stalls_total",
            "v1 stalls counted, by how their start was found (estimated from bl, or unknown)",
            ["start"], registry=registry,
        )
        self.clock_shifted = Counter(
            "playscope_collector_cmcd_clock_shifted_total",
            "v2 reports whose ts were shifted by the clock offset they revealed", registry=registry,
        )

    def ignore(self, key: str, reason: str) -> None:
        assert reason in REASONS, reason
        self.ignored.labels(key if key in KNOWN_KEYS else "other", reason).inc()
