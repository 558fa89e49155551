"""The report's HTML page: a summary, the charts, and tables per dimension, service and alert.
Everything from the cluster is escaped; the page needs no network (images sit next to it)."""

from __future__ import annotations

import html
from collections.abc import Iterable

from dashboards.report_data import DIMENSIONS, ReportData, failure_rate, rebuffer_ratio
from playscope.timeparse import ms_to_rfc3339

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #ddd}
.note{color:#666}.firing{color:#c4162a;font-weight:600}.resolved{color:#56a64b}
"""


def _e(value: object) -> str:
    return html.escape(str(value))


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.2f} %"


def _ms(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.0f} ms"


def _table(headers: Iterable[str], rows: Iterable[Iterable[object]], raw: bool = False) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c if raw else _e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render(data: ReportData, charts: dict[str, str]) -> str:
    t = data.totals
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>playscope QoE report {_e(ms_to_rfc3339(data.start_ms))}</title><style>{STYLE}</style></head><body>",
        "<h1>playscope QoE report</h1>",
        f"<p>{_e(ms_to_rfc3339(data.start_ms))} to {_e(ms_to_rfc3339(data.end_ms))} (UTC), "
        f"{data.windows} closed windows, {data.sessions} sessions.</p>",
    ]
    if data.empty:
        parts.append("<p class='note'>No QoE windows, sessions or service windows in this range.</p>")
    parts.append("<h2>Summary</h2>")
    parts.append(_table(("measure", "value"), [
        ("attempts", f"{t.get('attempts', 0):,.0f}"),
        ("plays", f"{t.get('plays', 0):,.0f}"),
        ("rebuffer ratio", _pct(rebuffer_ratio(t) if t else None)),
        ("failure rate", _pct(failure_rate(t) if t else None)),
        ("startup time p50 (sessions)", _ms(data.startup_p50_ms)),
        ("startup time p95 (sessions)", _ms(data.startup_p95_ms)),
        ("ended / completed / VSF / VPF / EBVS",
         " / ".join(f"{t.get(k, 0):,.0f}" for k in ("ended", "completed", "vsf", "vpf", "ebvs"))),
        ("session outcomes", ", ".join(f"{k}: {v}" for k, v in sorted(data.outcomes.items())) or "n/a"),
        ("alert firings", sum(1 for a in data.alerts if a.get("status") == "firing")),
    ]))
    parts.append("<h2>Charts</h2>")
    if not charts:
        parts.append("<p class='note'>No data to chart.</p>")
    for name, caption in charts.items():
        parts.append(f"<h3>{_e(caption)}</h3><img src='{_e(name)}' alt='{_e(caption)}'>")
    for dim in DIMENSIONS:
        rows = data.by_dimension.get(dim) or {}
        if not rows:
            continue
        parts.append(f"<h2>By {_e(dim)}</h2>")
        parts.append(_table((dim, "attempts", "plays", "rebuffer ratio", "failure rate", "ended"), [
            (k, f"{s['attempts']:,.0f}", f"{s['plays']:,.0f}", _pct(rebuffer_ratio(s)), _pct(failure_rate(s)),
             f"{s['ended']:,.0f}") for k, s in rows.items()]))
    if data.services:
        parts.append("<h2>Services</h2>")
        parts.append(_table(("service", "requests", "errors", "error rate", "mean p95", "worst p99"), [
            (k, f"{s['requests']:,.0f}", f"{s['errors']:,.0f}", _pct(s["error_rate"]), _ms(s["p95_mean"]),
             _ms(s["p99_worst"])) for k, s in data.services.items()]))
    parts.append("<h2>Alerts</h2>")
    if data.alerts:
        parts.append(_table(("time", "status", "rule", "severity", "group", "value", "threshold", "summary"), [
            (_e(ms_to_rfc3339(int(a["ts"]))), f"<span class='{_e(a.get('status'))}'>{_e(a.get('status'))}</span>",
             _e(a.get("rule")), _e(a.get("severity")), _e(a.get("group_key")), _e(a.get("value")),
             _e(a.get("threshold")), _e(a.get("summary"))) for a in data.alerts], raw=True))
    else:
        parts.append("<p class='note'>No alert state changes in this range.</p>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
