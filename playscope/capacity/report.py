"""The whole capacity report: steady sizing, surge, cost and the assumptions behind them."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from playscope.capacity import cost, headroom, plan
from playscope.capacity.encoding import KEY_BYTES
from playscope.capacity.figures import BenchFigures
from playscope.capacity.model import Load, Policy
from playscope.capacity.prices import Prices


def assumptions(load: Load, policy: Policy, kafka_note: str) -> list[str]:
    cmcd = (f"a CMCD request beacon per {load.segment_s:g} s media segment per viewer, one event each"
            if load.cmcd_requests else "no CMCD request beacons")
    return [
        f"every viewer has one open session and sends one heartbeat each {load.heartbeat_s:g} s; {cmcd}",
        f"sessions last {load.session_minutes:g} min and send 3 more beacons (session_start, playing, session_end)",
        "each beacon is one HTTP request of one event: the collector's per-core rate is bench's 1-event requests",
        "a streams worker is one process on one core: its per-core rate is bench's one-worker events/s",
        f"cores are planned at {policy.utilisation:.0%} CPU; instances fill memory to {policy.memory_fill:.0%}",
        f"the load splits evenly over {load.regions} region(s), each a full pipeline (figures are per region)",
        f"Kafka: replication factor {policy.replication_factor}, {policy.consumer_groups} consumer groups per "
        f"topic, brokers at {policy.network_fill:.0%} of baseline bandwidth, at least {policy.min_brokers}; "
        "retention per topic as playscope provisions it (raw 7 d, summaries and windows 30 d)",
        f"Kafka bytes per event {kafka_note}; other families scale by the playback event's measured ratios",
        f"search: {policy.search_replicas} replica per shard, {load.retention_days} d retention, at least "
        f"{policy.min_search_nodes} nodes; a core of a search node indexes what a core of the bench machine did",
        f"disks are planned {policy.disk_fill:.0%} full; window records: {load.qoe_groups} QoE and "
        f"{load.service_groups} service groups per {load.window_s} s window; alerts and dead letters not sized",
        f"surge: {policy.surge_factor:g}x the viewers; the collector spool is {policy.spool_bytes_per_worker >> 20} "
        "MiB per worker, one worker per core",
        "cost: on-demand instances and gp3 storage; the high end adds one spare instance per role (N+1)",
    ]


def build(load: Load, policy: Policy, figures: BenchFigures, prices: Prices) -> dict[str, Any]:
    steady = plan.size(load, policy, figures, prices)
    surge = plan.size(load, policy, figures, prices, factor=policy.surge_factor)
    absorbed = headroom.assess(steady, surge, policy, prices, figures.source_bytes_per_doc + KEY_BYTES)
    fleet = headroom.surge_fleet(surge, absorbed["needs"])
    absorbed["extra_usd_per_hour"] = (cost.hourly(fleet, prices, policy) - cost.hourly(steady, prices, policy)) \
        * load.regions
    return {
        "inputs": asdict(load),
        "policy": asdict(policy),
        "bench": {"file": figures.source, "figures": figures.used()},
        "assumptions": assumptions(load, policy, steady["kafka"]["bytes_per_event_source"]),
        "per_region": steady,
        "cost_per_month": cost.monthly(steady, prices, policy, load.regions),
        "surge": absorbed,
    }
