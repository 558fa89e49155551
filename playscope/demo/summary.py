"""The demo's closing summary: counts per stage and in Elasticsearch, alerts, where to look next."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from playscope.config import Settings
from playscope.demo.processes import Component, Supervisor
from playscope.demo.view import StageRates, WindowWatcher
from playscope.indices import FAMILIES


def index_counts(settings: Settings, since_ms: int | None = None) -> dict[str, int]:
    """Documents per index family (refreshed first, so the count is what is searchable)."""
    from playscope.search import make_client

    counts: dict[str, int] = {}
    with make_client(settings.elasticsearch, "elasticsearch") as es:
        es.indices.refresh(index=f"{settings.index_prefix}playscope-*", ignore_unavailable=True,
                           allow_no_indices=True)
        for name, family in FAMILIES.items():
            body: dict[str, Any] = {}
            if since_ms is not None:
                body = {"query": {"range": {family.time_field: {"gte": since_ms}}}}
            resp = es.count(index=f"{settings.index_prefix}{family.pattern}", ignore_unavailable=True,
                            allow_no_indices=True, **body)
            counts[name] = int(resp["count"])
    return counts


def print_summary(console: Console, settings: Settings, run_dir: Path, sup: Supervisor, watcher: WindowWatcher,
                  rates: StageRates, alerts: list[dict[str, Any]], elapsed_s: float, dead: list[Component]) -> None:
    console.rule("[bold]playscope demo: summary")
    stages = Table(title="Events through each stage")
    stages.add_column("stage")
    stages.add_column("count", justify="right")
    for stage, total in rates.totals.items():
        stages.add_row(stage, f"{total:,.0f}")
    stages.add_row("windows seen by the view", f"{watcher.windows:,}")
    console.print(stages)
    try:
        counts = index_counts(settings)
        table = Table(title=f"Documents in Elasticsearch ({settings.elasticsearch.url})")
        table.add_column("index family")
        table.add_column("documents", justify="right")
        for name, count in counts.items():
            table.add_row(f"{settings.index_prefix}playscope-{name}-*", f"{count:,}")
        console.print(table)
    except Exception as exc:
        console.print(f"[yellow]could not count documents: {exc}")
    fired = [a for a in alerts if a.get("status") == "firing"]
    resolved = [a for a in alerts if a.get("status") == "resolved"]
    console.print(f"alerts delivered to the webhook: [bold red]{len(fired)} firing[/], "
                  f"[green]{len(resolved)} resolved[/]")
    for note in alerts:
        group = ",".join(f"{k}={v}" for k, v in (note.get("group") or {}).items())
        line = f"  {note.get('status'):8} {note.get('rule')} ({group}) {note.get('summary', '')}"
        console.print(escape(line))
    if watcher.peak_rebuffer:
        worst = max(watcher.peak_rebuffer.items(), key=lambda kv: kv[1])
        console.print(f"worst CDN window: {worst[0]} rebuffer ratio {worst[1] * 100:.1f} %")
    for comp in dead:
        console.print(f"[red]{comp.name} exited with {comp.proc.returncode if comp.proc else '?'}; "
                      f"last lines:\n{comp.tail()}")
    console.print(f"\nfinished in {elapsed_s:.0f} s. Where to look next:")
    console.print(f"  component logs and configs   {run_dir}")
    search = f"curl '{settings.elasticsearch.url}/playscope-qoe-*/_search?q=group:cdn'"
    console.print(f"  search the data              {search}")
    console.print("  dashboards                   playscope dashboards provision   (Grafana / Kibana)")
    console.print("  QoE report                   playscope report --from now-1h --to now")
    console.print("  the stack is still running   playscope stack status | playscope stack down")
