"""The capacity report as rich tables on stdout (``--json`` prints the object instead)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from playscope.capacity.model import GIB

TIB = 2**40


def _n(value: float) -> str:
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unbounded"
    if seconds >= 2 * 86_400:
        return f"{seconds / 86_400:,.1f} d"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:,.1f} h"
    return f"{seconds / 60:,.1f} min" if seconds >= 120 else f"{seconds:,.0f} s"


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left")
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right")
    return table


def print_report(result: dict[str, Any], console: Console | None = None) -> None:
    out = console or Console()
    region = result["per_region"]
    regions = result["inputs"]["regions"]
    rates = _table(f"load per region ({regions} region(s))", "per second", "value")
    for name, value in region["rates_per_s"].items():
        rates.add_row(name.replace("_", " "), _n(value))
    out.print(rates)

    comps = _table("components per region", "component", "load/s", "per core/s", "cores", "memory GiB", "bench figure")
    for c in region["components"]:
        comps.add_row(c["name"], _n(c["load_per_s"]), _n(c["per_core_per_s"]), str(c["cores"]),
                      _n(c["memory_gib"]) if c["memory_gib"] else "", c["figure"])
    out.print(comps)

    kafka = region["kafka"]
    topics = _table(f"Kafka per region: {kafka['brokers']} brokers", "topic", "records/s", "bytes/record",
                    "retention d", "partitions", "disk TiB (all replicas)")
    for t in kafka["topics"]:
        topics.add_row(t["name"].removeprefix("playscope."), _n(t["records_per_s"]), _n(t["bytes_per_record"]),
                       _n(t["retention_days"]),
                       str(t["partitions"] or ""), f"{t['disk_bytes'] / TIB:,.2f}")
    topics.add_row("brokers in / out MB/s", f"{kafka['broker_in_bytes_per_s'] / 1e6:,.1f}",
                   f"{kafka['broker_out_bytes_per_s'] / 1e6:,.1f}", "", "", f"{kafka['disk_bytes'] / TIB:,.2f}")
    out.print(topics)

    search = region["search"]
    families = _table(f"search per region: {search['nodes']} nodes, {search['indexing_cores']} indexing cores",
                      "family", "bytes/doc", "disk TiB (with replicas)")
    for family, used in search["disk_bytes_by_family"].items():
        families.add_row(family, _n(search["bytes_per_doc"][family]), f"{used / TIB:,.2f}")
    out.print(families)
    state = region["streams_state"]
    out.print(f"streams state: {_n(state['open_sessions'])} open sessions x {_n(state['bytes_per_open_session'])} "
              f"B = {state['memory_gib']:,.1f} GiB per region")

    _print_surge(out, result["surge"])
    _print_cost(out, result["cost_per_month"])
    out.print(f"bench figures from {result['bench']['file']}:")
    for path, value in result["bench"]["figures"].items():
        out.print(f"  {path} = {_n(value)}")
    out.print("assumptions:")
    for line in result["assumptions"]:
        out.print(f"  - {line}")


def _print_surge(out: Console, surge: dict[str, Any]) -> None:
    needs = surge["needs"]
    table = _table(f"{surge['factor']:g}x surge per region", "what", "value")
    for name, cores in needs["cores"].items():
        table.add_row(f"{name} cores needed", str(cores))
    table.add_row("brokers needed", str(needs["brokers"]))
    table.add_row("search nodes needed", str(needs["search_nodes"]))
    for topic, count in needs["partitions"].items():
        table.add_row(f"partitions {topic}", str(count))
    table.add_row("streams memory GiB", _n(needs["streams_memory_gib"]))
    collector = surge["collector"]
    table.add_row("collector unscaled: absorbs up to", f"{collector['absorbs_factor_unscaled']:.2f}x")
    table.add_row("collector unscaled: refused (503)", f"{collector['refused_fraction_unscaled']:.0%}")
    spool = surge["spool"]
    table.add_row(f"spool {spool['bytes'] / GIB:,.0f} GiB: Kafka outage steady / surge",
                  f"{_duration(spool['kafka_outage_s_steady'])} / {_duration(spool['kafka_outage_s_surge'])}")
    kafka = surge["kafka"]
    table.add_row("Kafka disk headroom absorbs the surge for", _duration(kafka["absorbs_s"]))
    table.add_row("broker network at surge (of baseline)", f"{kafka['broker_network_fill_surge']:.0%}")
    for name, lag in surge["lag"].items():
        table.add_row(f"{name} lag growth /s", _n(lag["lag_growth_per_s"]))
        table.add_row(f"{name} catch-up per surge minute", _duration(lag["catch_up_s_per_surge_minute"]))
        table.add_row(f"{name} longest surge within retention", _duration(lag["longest_surge_within_retention_s"]))
    table.add_row("collector scaled out: surge absorbed for", f"{_duration(surge['absorbable_s'])} "
                  f"(first limit: {surge['absorbable_limit']})")
    table.add_row("surge capacity costs, per hour, all regions", f"${surge['extra_usd_per_hour']:,.0f}")
    out.print(table)


def _print_cost(out: Console, cost: dict[str, Any]) -> None:
    table = _table(f"monthly cost (prices {cost['prices_as_of']})", "role", "instance", "count per region",
                   "USD per region")
    for role, count in cost["instances_per_region"].items():
        table.add_row(role, cost["instance_types"][role], _n(count), f"{cost['usd_by_role_per_region'][role]:,.0f}")
    table.add_row("gp3 disk", f"{cost['disk_gib_per_region']:,.0f} GiB", "", f"{cost['disk_usd_per_region']:,.0f}")
    table.add_row("all regions", "", "", f"{cost['low_usd']:,.0f} - {cost['high_usd']:,.0f}")
    out.print(table)
