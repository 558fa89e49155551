"""The bench figures the capacity model needs, read by name from a ``playscope bench`` report.

Per-core rates are never constants: each comes from a named figure of the report, and a figure
the report lacks is an error naming it, so a sizing is always traceable to a measurement.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from playscope.errors import PlayscopeError

# what the model calls a figure -> its dotted path in the bench report
PATHS: dict[str, str] = {
    "collector_cpu_us_per_request": "collector.by_events_per_request.1.collector_cpu_us_per_event",
    "agent_cpu_us_per_line": "agent.agent_cpu_us_per_line",
    "streams_events_per_s": "streams.events_per_s",
    "indexer_cpu_us_per_doc": "indexer.cpu_us_per_doc.indexer",
    "indexer_docs_per_s": "indexer.docs_per_s",
    "search_docs_per_s": "indexer.baseline_docs_per_s",
    "bench_cpus": "indexer.host_cpus",
    "store_bytes_per_doc": "indexer.store_bytes_per_doc",
    "source_bytes_per_doc": "indexer.source_bytes_per_doc",
    "kafka_bytes_per_event": "indexer.kafka_bytes_per_event",
    "bytes_per_open_session": "streams.state.bytes_per_open_session",
    "state_bytes_per_session": "streams.state.state_bytes_per_session",
}
# figures the model can do without: the agent's only matters with log lines; Kafka's stored
# size is measured only on a local single broker, else computed from the encoding (encoding.py)
OPTIONAL: frozenset[str] = frozenset({"agent_cpu_us_per_line", "kafka_bytes_per_event"})


class MissingFigure(PlayscopeError):
    """The bench report lacks a figure the model needs; the message names it."""


@dataclass(frozen=True)
class BenchFigures:
    source: str
    collector_cpu_us_per_request: float  # one single-event beacon, collector workers' CPU
    streams_events_per_s: float  # one streams worker (one process, one core)
    indexer_cpu_us_per_doc: float  # the indexer's own CPU per document
    indexer_docs_per_s: float  # one indexer instance, as a consumer
    search_docs_per_s: float  # one search node on the bench machine, bare bulk client
    bench_cpus: int  # cores of the bench machine (the search node shared them)
    store_bytes_per_doc: float  # playback document, primary store
    source_bytes_per_doc: float  # the same document as JSON
    bytes_per_open_session: float  # streams memory per open session
    state_bytes_per_session: float  # streams changelog entry per open session
    agent_cpu_us_per_line: float | None = None
    kafka_bytes_per_event: float | None = None

    def used(self) -> dict[str, Any]:
        """The figures with their report paths, for the output."""
        return {PATHS[name]: getattr(self, name) for name in PATHS if getattr(self, name) is not None}


def lookup(report: dict[str, Any], path: str, source: str) -> float:
    """The number at ``path`` (dots) in ``report``; MissingFigure names the path otherwise."""
    node: Any = report
    for depth, part in enumerate(path.split(".")):
        if isinstance(node, dict) and "error" in node and part not in node:
            stage = ".".join(path.split(".")[:depth])
            raise MissingFigure(f"{source}: bench figure {path} is missing: stage {stage} failed ({node['error']})")
        if not isinstance(node, dict) or part not in node:
            raise MissingFigure(f"{source}: bench figure {path} is missing (run `playscope bench` to measure it)")
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, int | float) or node <= 0:
        raise MissingFigure(f"{source}: bench figure {path} is {node!r}, not a positive number")
    return float(node)


def from_report(report: dict[str, Any], source: str, need_agent: bool = False) -> BenchFigures:
    values: dict[str, Any] = {}
    for name, path in PATHS.items():
        if name == "agent_cpu_us_per_line" and not need_agent:
            continue  # no log lines, no agent: its figure is not used
        try:
            values[name] = lookup(report, path, source)
        except MissingFigure:
            if name not in OPTIONAL or name == "agent_cpu_us_per_line":
                raise
    values["bench_cpus"] = int(values["bench_cpus"])
    return BenchFigures(source=source, **values)


def load(path: Path, need_agent: bool = False) -> BenchFigures:
    try:
        report = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise MissingFigure(f"bench file {path} does not exist") from None
    except orjson.JSONDecodeError as exc:
        raise MissingFigure(f"bench file {path} is not JSON: {exc}") from None
    if not isinstance(report, dict):
        raise MissingFigure(f"bench file {path} does not hold a bench report object")
    return from_report(report, str(path), need_agent)


def latest(folder: Path, need_agent: bool = False) -> BenchFigures:
    """The figures of the newest report ``playscope bench`` kept (names sort by time) that has
    them all: a ``--only`` rerun of one stage keeps a partial report, and the last full run
    before it still holds the other figures."""
    found = sorted(folder.glob("bench-*.json"), reverse=True)
    if not found:
        raise MissingFigure(f"no bench report in {folder}: run `playscope bench` first, or pass --bench FILE")
    newest: MissingFigure | None = None
    for path in found:
        try:
            return load(path, need_agent)
        except MissingFigure as exc:
            newest = newest or exc
    assert newest is not None
    raise MissingFigure(f"no bench report in {folder} has every figure; the newest: {newest}")
