"""The capacity model: pure functions from a load and measured figures to what it needs.

Every rate per core comes from a bench figure (``figures.BenchFigures``); this module only
does the arithmetic, so each number of a sizing can be followed back to a measurement and an
assumption stated in ``Policy`` or ``Load``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DAY_S = 86_400
GIB = 2**30
# one session's lifecycle beacons besides heartbeats: session_start, playing, session_end
LIFECYCLE_EVENTS = 3


@dataclass(frozen=True)
class Load:
    viewers: int  # concurrent viewers, all regions
    heartbeat_s: float = 10.0
    cmcd_requests: bool = False  # a CMCD request beacon per media segment per viewer
    segment_s: float = 2.0
    session_minutes: float = 30.0
    log_lines_per_s: float = 0.0  # service log lines through the agent, all regions
    retention_days: int = 30  # search indices
    regions: int = 1  # the load splits evenly; each region runs a full pipeline
    qoe_groups: int = 2000  # window records per QoE window (groups with traffic)
    service_groups: int = 200
    window_s: int = 60


@dataclass(frozen=True)
class Policy:
    utilisation: float = 0.6  # CPU planned per core: the rest is headroom for spikes and failover
    surge_factor: float = 10.0
    replication_factor: int = 3
    disk_fill: float = 0.7  # of a data disk (search's flood watermark is 95 %, Kafka has none)
    network_fill: float = 0.5  # of a broker's baseline bandwidth
    memory_fill: float = 0.7
    min_brokers: int = 3
    min_search_nodes: int = 3
    search_replicas: int = 1
    consumer_groups: int = 2  # readers of each topic (streams and the indexer on raw topics)
    spool_bytes_per_worker: int = 512 * 2**20  # collector.spool_max_bytes default, per worker


def ceil(value: float) -> int:
    """Round up, forgiving float noise (100000.00000001 cores is 100000)."""
    return max(0, math.ceil(round(value, 6)))


@dataclass(frozen=True)
class Rates:
    """Per second in one region."""

    viewers: float
    heartbeat_events: float
    lifecycle_events: float
    cmcd_requests: float
    sessions: float
    log_lines: float
    qoe_windows: float  # window records
    service_windows: float

    @property
    def requests(self) -> float:
        """HTTP requests at the collector: every beacon is one request of one event."""
        return self.heartbeat_events + self.lifecycle_events + self.cmcd_requests

    @property
    def events(self) -> float:
        """Playback events into Kafka: a CMCD request beacon becomes one event."""
        return self.requests

    @property
    def window_records(self) -> float:
        return self.qoe_windows + self.service_windows

    @property
    def docs(self) -> float:
        """Documents the indexer writes: raw events and log lines, summaries and windows."""
        return self.events + self.log_lines + self.sessions + self.window_records


def rates(load: Load, factor: float = 1.0) -> Rates:
    """The load of one region, the viewer-driven part multiplied by ``factor`` (a surge)."""
    viewers = load.viewers / load.regions * factor
    session_s = load.session_minutes * 60
    return Rates(
        viewers=viewers,
        heartbeat_events=viewers / load.heartbeat_s,
        lifecycle_events=LIFECYCLE_EVENTS * viewers / session_s,
        cmcd_requests=viewers / load.segment_s if load.cmcd_requests else 0.0,
        sessions=viewers / session_s,
        log_lines=load.log_lines_per_s / load.regions,
        qoe_windows=load.qoe_groups / load.window_s,
        service_windows=load.service_groups / load.window_s,
    )


def cores_for_cpu(per_s: float, cpu_us_each: float, utilisation: float) -> int:
    """Cores for ``per_s`` items costing ``cpu_us_each`` CPU microseconds, at ``utilisation``."""
    return ceil(per_s * cpu_us_each / 1e6 / utilisation)


def cores_for_rate(per_s: float, per_core_per_s: float, utilisation: float) -> int:
    """Cores for ``per_s`` items when one core handles ``per_core_per_s``."""
    return ceil(per_s / per_core_per_s / utilisation)


def partitions(records_per_s: float, consumer_per_s: float, utilisation: float) -> int:
    """A partition is read by one consumer of a group: enough partitions that the slowest
    group's consumers each stay at ``utilisation``."""
    return max(1, ceil(records_per_s / consumer_per_s / utilisation))


def retained_bytes(bytes_per_s: float, retention_days: float, copies: int) -> float:
    return bytes_per_s * retention_days * DAY_S * copies


def nodes_for_disk(total_bytes: float, max_disk_gib: float, fill: float) -> int:
    return ceil(total_bytes / (max_disk_gib * GIB * fill))


def nodes_for_network(bytes_per_s: float, gbps: float, fill: float) -> int:
    return ceil(bytes_per_s / (gbps * 1e9 / 8 * fill))


def broker_traffic(ingress_bytes_per_s: float, policy: Policy) -> tuple[float, float]:
    """Bytes/s into and out of the brokers: producers' writes and replication in; replication
    and every consumer group out."""
    into = ingress_bytes_per_s * policy.replication_factor
    out = ingress_bytes_per_s * (policy.replication_factor - 1 + policy.consumer_groups)
    return into, out


def instances(cores: int, memory_gib: float, vcpu: int, gib: float, memory_fill: float) -> int:
    """Instances of one type for ``cores`` and ``memory_gib``; at least one for any work."""
    need = max(ceil(cores / vcpu), ceil(memory_gib / (gib * memory_fill)))
    return max(need, 1) if cores or memory_gib else 0


def lag_growth(offered_per_s: float, capacity_per_s: float) -> float:
    """Records/s a consumer group falls behind while offered more than it can take."""
    return max(0.0, offered_per_s - capacity_per_s)


def catch_up_s(lag_records: float, capacity_per_s: float, steady_per_s: float) -> float:
    """Seconds to work off a lag once the load is back to steady (inf if never)."""
    spare = capacity_per_s - steady_per_s
    return lag_records / spare if spare > 0 else math.inf


def absorb_s(free_bytes: float, extra_bytes_per_s: float) -> float:
    """Seconds until ``free_bytes`` fill at ``extra_bytes_per_s`` (inf if nothing extra)."""
    return free_bytes / extra_bytes_per_s if extra_bytes_per_s > 0 else math.inf
