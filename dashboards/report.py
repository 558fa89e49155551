"""``playscope report --from ... --to ...``: a QoE report (PNG charts and an HTML page) from
Elasticsearch or OpenSearch, for people without Grafana at hand.

    playscope report --from now-3h                       # up to now, into ./playscope-report/
    playscope report --from 2025-05-01T10:00:00Z --to 2025-05-01T12:00:00Z --out /tmp/rep

Times are epoch milliseconds, RFC 3339, a UTC date (``2025-05-01``), ``now`` or ``now-<n><s|m|h|d>``.
The cluster is the one the indexer writes to (``backend``, ``PLAYSCOPE_BACKEND``).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import Any

from dashboards.errors import DashboardsError
from playscope.config import Settings
from playscope.errors import ValidationError
from playscope.timeparse import parse_ts

_RELATIVE = re.compile(r"^now(?:-(\d+)([smhd]))?$")
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_when(text: str, now_ms: int) -> int:
    """Epoch ms for a --from/--to value; raises DashboardsError with the accepted forms."""
    value = text.strip()
    rel = _RELATIVE.match(value)
    if rel:
        amount, unit = rel.groups()
        return now_ms - (int(amount) * _UNIT_MS[unit] if amount else 0)
    if _DATE.match(value):
        value = f"{value}T00:00:00Z"
    try:
        return parse_ts(int(value) if value.isdigit() else value, field="time")
    except ValidationError as exc:
        raise DashboardsError(
            f"cannot read time {text!r} ({exc.reason}); use epoch ms, RFC 3339, YYYY-MM-DD, now or now-6h"
        ) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="start", required=True, help="start of the range (e.g. now-6h)")
    parser.add_argument("--to", dest="end", default="now", help="end of the range (default: now)")
    parser.add_argument("--out", default="playscope-report", help="output folder (default: ./playscope-report/)")


def build_report(settings: Settings, start_ms: int, end_ms: int, out: Path) -> tuple[Path, Any]:
    """Read the range, write the charts and index.html into ``out``; return (page, data)."""
    try:
        from dashboards import report_charts
    except ModuleNotFoundError as exc:
        if exc.name != "matplotlib":
            raise
        raise DashboardsError("playscope report draws its charts with matplotlib, an optional extra: "
                              "pip install 'playscope[report]'") from None
    from dashboards import report_html
    from dashboards.report_data import ReportReader
    from dashboards.search import SearchClient

    if end_ms <= start_ms:
        raise DashboardsError("--to must be after --from")
    with SearchClient(settings.search) as client:
        data = ReportReader(client, settings.index_prefix).read(start_ms, end_ms)
    out.mkdir(parents=True, exist_ok=True)
    charts = report_charts.render(data, out)
    page = out / "index.html"
    page.write_text(report_html.render(data, charts))
    return page, data


def run(args: Any, settings: Settings) -> int:
    now_ms = int(time.time() * 1000)
    start_ms, end_ms = parse_when(args.start, now_ms), parse_when(args.end, now_ms)
    page, data = build_report(settings, start_ms, end_ms, Path(args.out))
    if data.empty:
        print(f"playscope report: no QoE data between {args.start} and {args.end} in "
              f"{settings.search.url}", file=sys.stderr)
    print(f"report written to {page}")
    return 0
