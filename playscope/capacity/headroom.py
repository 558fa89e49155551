"""The surge: what ``surge_factor`` times the viewers needs, and what the steady sizing absorbs.

A surge first meets the collector: beyond its cores it answers 503 with Retry-After (bench's
surge stage measures that it refuses fast and loses nothing), so the collector tier is what must
scale out. Past the collector the surge is absorbed, not refused: Kafka keeps what the consumers
cannot take yet (consumer lag) until its disk headroom fills, and the collector's spool holds
accepted requests while Kafka is unreachable.
"""

from __future__ import annotations

import math
from typing import Any

from playscope.capacity import model
from playscope.capacity.model import Policy
from playscope.capacity.prices import Prices


def _component(sizing: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in sizing["components"] if c["name"] == name)


def _seconds(value: float) -> float | None:
    return None if math.isinf(value) else round(value, 1)


def _inf(value: float | None) -> float:
    return math.inf if value is None else value


def consumer(steady: dict[str, Any], surge: dict[str, Any], name: str, retention_s: float,
             capacity_per_s: float | None = None) -> dict[str, Any]:
    """Lag of one consumer tier left at its steady size through the surge."""
    comp = _component(steady, name)
    capacity = capacity_per_s if capacity_per_s is not None else comp["cores"] * comp["per_core_per_s"]
    offered = _component(surge, name)["load_per_s"]
    growth = model.lag_growth(offered, capacity)
    per_minute = model.catch_up_s(growth * 60, capacity, comp["load_per_s"])
    # the oldest unread record must be read before retention deletes it: surge + catch-up < retention
    spare = capacity - comp["load_per_s"]
    longest = retention_s / (1 + growth / spare) if growth and spare > 0 else math.inf
    return {"capacity_per_s": capacity, "offered_per_s": offered, "lag_growth_per_s": growth,
            "catch_up_s_per_surge_minute": _seconds(per_minute), "longest_surge_within_retention_s": _seconds(longest)}


def surge_fleet(surge: dict[str, Any], needs: dict[str, Any]) -> dict[str, Any]:
    """The surge sizing with the brokers and search nodes the surge needs (not its disk)."""
    return {**surge, "kafka": {**surge["kafka"], "brokers": needs["brokers"]},
            "search": {**surge["search"], "nodes": needs["search_nodes"]}}


def assess(steady: dict[str, Any], surge: dict[str, Any], policy: Policy, prices: Prices,
           spool_event_bytes: float) -> dict[str, Any]:
    collector = _component(steady, "collector")
    capacity = collector["cores"] * collector["per_core_per_s"]
    offered = _component(surge, "collector")["load_per_s"]
    accepted = min(offered, capacity)
    spool = collector["cores"] * policy.spool_bytes_per_worker  # one worker per core, a spool each
    kafka_used = steady["kafka"]["disk_bytes"]
    kafka_free = kafka_used / policy.disk_fill - kafka_used
    extra = (surge["kafka"]["ingress_bytes_per_s"] - steady["kafka"]["ingress_bytes_per_s"]) * policy.replication_factor
    broker = prices.roles["broker"]
    broker_capacity = steady["kafka"]["brokers"] * broker.network_gbps * 1e9 / 8
    retention_s = min(t["retention_days"] for t in steady["kafka"]["topics"] if t["retention_days"]) * model.DAY_S
    search = steady["search"]
    search_capacity = search["nodes"] * prices.roles["search"].vcpu * search["docs_per_s_per_core"]
    indexed = min(_component(steady, "indexer")["cores"] * _component(steady, "indexer")["per_core_per_s"],
                  search_capacity / (1 + policy.search_replicas))
    lag = {"streams": consumer(steady, surge, "streams", retention_s),
           "indexer": consumer(steady, surge, "indexer", retention_s, capacity_per_s=indexed)}
    kafka_absorbs = model.absorb_s(kafka_free, extra)
    limits = {"kafka disk": kafka_absorbs}
    limits.update({f"{name} lag within retention": _inf(v["longest_surge_within_retention_s"])
                   for name, v in lag.items()})
    first = min(limits, key=lambda k: limits[k])
    return {
        "factor": policy.surge_factor,
        # with the collector scaled out, how long the surge lasts before a record would be refused or lost
        "absorbable_s": _seconds(limits[first]), "absorbable_limit": first,
        "needs": {
            "cores": {c["name"]: c["cores"] for c in surge["components"]},
            # a surge lasts hours, not the retention: disk counts below (absorbs_s), not here
            "brokers": max(steady["kafka"]["brokers"], surge["kafka"]["brokers_for_network"]),
            "search_nodes": max(steady["search"]["nodes"], surge["search"]["nodes_for_indexing"]),
            "partitions": {t["name"]: t["partitions"] for t in surge["kafka"]["topics"] if t["partitions"]},
            "streams_memory_gib": surge["streams_state"]["memory_gib"],
        },
        "collector": {"capacity_requests_per_s": capacity, "offered_requests_per_s": offered,
                      "absorbs_factor_unscaled": capacity / collector["load_per_s"],
                      "refused_fraction_unscaled": max(0.0, 1 - capacity / offered)},
        "spool": {"bytes": spool, "kafka_outage_s_steady": _seconds(model.absorb_s(
                      spool, collector["load_per_s"] * spool_event_bytes)),
                  "kafka_outage_s_surge": _seconds(model.absorb_s(spool, accepted * spool_event_bytes))},
        "kafka": {"free_disk_bytes": kafka_free, "extra_bytes_per_s": extra, "absorbs_s": _seconds(kafka_absorbs),
                  "broker_network_fill_surge": max(surge["kafka"]["broker_in_bytes_per_s"],
                                                   surge["kafka"]["broker_out_bytes_per_s"]) / broker_capacity},
        "lag": lag,
    }
