"""A sizing: the model applied to one load, with the figures and assumptions it rests on."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from playscope import topics
from playscope.capacity import model
from playscope.capacity.encoding import RecordSizes, sizes
from playscope.capacity.figures import PATHS, BenchFigures, MissingFigure
from playscope.capacity.model import GIB, Load, Policy, Rates
from playscope.capacity.prices import Prices

RETENTION_DAYS = {spec.name: int(spec.config["retention.ms"]) / topics.DAY_MS
                  for spec in topics.TOPICS if "retention.ms" in spec.config}


@dataclass(frozen=True)
class Component:
    name: str
    load_per_s: float
    per_core_per_s: float
    figure: str  # the bench figure the per-core rate comes from
    cores: int
    memory_gib: float = 0.0


@dataclass(frozen=True)
class Topic:
    name: str
    records_per_s: float
    bytes_per_record: float
    retention_days: float
    partitions: int
    disk_bytes: float  # all replicas


def components(r: Rates, f: BenchFigures, p: Policy) -> list[Component]:
    u = p.utilisation
    per_request = 1e6 / f.collector_cpu_us_per_request
    out = [Component("collector", r.requests, per_request, PATHS["collector_cpu_us_per_request"],
                     model.cores_for_cpu(r.requests, f.collector_cpu_us_per_request, u))]
    if r.log_lines:
        if f.agent_cpu_us_per_line is None:
            raise MissingFigure(f"{f.source}: bench figure {PATHS['agent_cpu_us_per_line']} is missing "
                                "(log lines need the agent's)")
        out.append(Component("agent", r.log_lines, 1e6 / f.agent_cpu_us_per_line, PATHS["agent_cpu_us_per_line"],
                             model.cores_for_cpu(r.log_lines, f.agent_cpu_us_per_line, u)))
    streamed = r.events + r.log_lines
    out.append(Component("streams", streamed, f.streams_events_per_s, PATHS["streams_events_per_s"],
                         model.cores_for_rate(streamed, f.streams_events_per_s, u),
                         memory_gib=r.viewers * f.bytes_per_open_session / GIB))
    out.append(Component("indexer", r.docs, 1e6 / f.indexer_cpu_us_per_doc, PATHS["indexer_cpu_us_per_doc"],
                         model.cores_for_cpu(r.docs, f.indexer_cpu_us_per_doc, u)))
    return out


def kafka_topics(r: Rates, f: BenchFigures, rec: dict[str, RecordSizes], p: Policy) -> list[Topic]:
    slowest = min(f.streams_events_per_s, f.indexer_docs_per_s)  # raw topics: both groups read them
    rows = [(topics.PLAYBACK_EVENTS, r.events, rec["playback"].kafka, slowest),
            (topics.SERVICE_LOGS, r.log_lines, rec["logs"].kafka, slowest),
            (topics.QOE_SESSIONS, r.sessions, rec["sessions"].kafka, f.indexer_docs_per_s),
            (topics.QOE_METRICS, r.qoe_windows, rec["qoe"].kafka, f.indexer_docs_per_s),
            (topics.SERVICE_METRICS, r.service_windows, rec["service"].kafka, f.indexer_docs_per_s)]
    out = [Topic(name, per_s, size, RETENTION_DAYS[name], model.partitions(per_s, consumer, p.utilisation),
                 model.retained_bytes(per_s * size, RETENTION_DAYS[name], p.replication_factor))
           for name, per_s, size, consumer in rows]
    # the streams workers' changelog: compacted, one entry per open session, half of it dirty
    changelog = r.viewers * f.state_bytes_per_session * 2 * p.replication_factor
    out.append(Topic("streams state changelog (compacted)", 0.0, f.state_bytes_per_session, 0.0, 0, changelog))
    return out


def index_disk(r: Rates, rec: dict[str, RecordSizes], load: Load, p: Policy) -> dict[str, float]:
    per_s = {"playback": r.events, "logs": r.log_lines, "sessions": r.sessions,
             "qoe": r.qoe_windows, "service": r.service_windows}
    return {family: model.retained_bytes(n * rec[family].index, load.retention_days, 1 + p.search_replicas)
            for family, n in per_s.items()}


def size(load: Load, policy: Policy, figures: BenchFigures, prices: Prices, factor: float = 1.0) -> dict[str, Any]:
    """One region's sizing at ``factor`` times the viewers (1: steady)."""
    r = model.rates(load, factor)
    rec, kafka_note = sizes(figures.store_bytes_per_doc, figures.source_bytes_per_doc, figures.kafka_bytes_per_event)
    comps = components(r, figures, policy)
    tops = kafka_topics(r, figures, rec, policy)
    ingress = sum(t.records_per_s * t.bytes_per_record for t in tops)
    into, out = model.broker_traffic(ingress, policy)
    kafka_disk = sum(t.disk_bytes for t in tops)
    broker = prices.roles["broker"]
    for_network = model.nodes_for_network(max(into, out), broker.network_gbps, policy.network_fill)
    for_disk = model.nodes_for_disk(kafka_disk, prices.max_disk_gib["broker"], policy.disk_fill)
    disk = index_disk(r, rec, load, policy)
    search_per_core = figures.search_docs_per_s / figures.bench_cpus
    search_cores = model.cores_for_rate(r.docs * (1 + policy.search_replicas), search_per_core, policy.utilisation)
    search = prices.roles["search"]
    for_indexing = model.ceil(search_cores / search.vcpu)
    for_search_disk = model.nodes_for_disk(sum(disk.values()), prices.max_disk_gib["search"], policy.disk_fill)
    return {
        "rates_per_s": {"viewers": r.viewers, "heartbeat_events": r.heartbeat_events,
                        "lifecycle_events": r.lifecycle_events, "cmcd_requests": r.cmcd_requests,
                        "requests": r.requests, "events": r.events, "sessions": r.sessions,
                        "log_lines": r.log_lines, "window_records": r.window_records, "documents": r.docs},
        "components": [asdict(c) for c in comps],
        "kafka": {"topics": [asdict(t) for t in tops], "ingress_bytes_per_s": ingress,
                  "broker_in_bytes_per_s": into, "broker_out_bytes_per_s": out, "disk_bytes": kafka_disk,
                  "brokers_for_network": for_network, "brokers_for_disk": for_disk,
                  "brokers": max(policy.min_brokers, for_network, for_disk), "bytes_per_event_source": kafka_note},
        "search": {"disk_bytes_by_family": disk, "disk_bytes": sum(disk.values()),
                   "bytes_per_doc": {k: v.index for k, v in rec.items()},
                   "indexing_cores": search_cores, "docs_per_s_per_core": search_per_core,
                   "nodes_for_indexing": for_indexing, "nodes_for_disk": for_search_disk,
                   "nodes": max(policy.min_search_nodes, for_indexing, for_search_disk)},
        "streams_state": {"open_sessions": r.viewers, "bytes_per_open_session": figures.bytes_per_open_session,
                          "memory_gib": r.viewers * figures.bytes_per_open_session / GIB},
    }
