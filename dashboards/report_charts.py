"""The report's PNG charts (matplotlib, headless). One function per chart, registered in CHARTS;
a chart with nothing to draw is skipped and the page says so."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from dashboards.report_data import DIMENSIONS, ReportData, failure_rate, rebuffer_ratio

DPI = 110


def _times(ts: list[int]) -> list[datetime]:
    return [datetime.fromtimestamp(t / 1000, tz=UTC) for t in ts]


def _time_axis(ax: plt.Axes, label: bool = True) -> None:
    locator = mdates.AutoDateLocator(tz=UTC)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=UTC))
    if label:
        ax.set_xlabel("time (UTC)")
    ax.grid(alpha=0.3)


def qoe_timeline(data: ReportData) -> Figure | None:
    if not data.timeline:
        return None
    t = _times([p.ts for p in data.timeline])
    fig, (a1, a2, a3) = plt.subplots(3, 1, figsize=(10, 8), sharex=True)
    a1.plot(t, [p.sums["attempts"] for p in data.timeline], label="attempts", color="#3274d9")
    a1.plot(t, [p.sums["plays"] for p in data.timeline], label="plays", color="#56a64b")
    a1.set_ylabel("sessions")
    a1.legend(loc="upper left")
    a1.set_title("Attempts and plays")
    a2.plot(t, [rebuffer_ratio(p.sums) for p in data.timeline], color="#e0752d")
    a2.yaxis.set_major_formatter(PercentFormatter(1.0))
    a2.set_title("Rebuffer ratio (rebuffer time / watched time)")
    a3.plot(t, [failure_rate(p.sums) for p in data.timeline], color="#c4162a")
    a3.yaxis.set_major_formatter(PercentFormatter(1.0))
    a3.set_title("Failure rate ((VSF + VPF) / ended)")
    for ax in (a1, a2, a3):
        _time_axis(ax, label=ax is a3)
    return fig


def startup(data: ReportData) -> Figure | None:
    points = [p for p in data.timeline if p.startup_p50 is not None]
    if not points:
        return None
    fig, ax = plt.subplots(figsize=(10, 3.5))
    t = _times([p.ts for p in points])
    # matplotlib's stubs take only numbers and arrays, but plot() draws datetimes through its date converter
    # and None as a gap: the ignores below are for that
    ax.plot(t, [p.startup_p50 for p in points], label="p50", color="#3274d9")  # type: ignore[arg-type]
    ax.plot(t, [p.startup_p95 for p in points], label="p95", color="#8f3bb8")  # type: ignore[arg-type]
    ax.set_ylabel("startup time (ms)")
    ax.set_title("Startup time per window (all traffic)")
    ax.legend(loc="upper left")
    _time_axis(ax)
    return fig


def rebuffer_by_cdn(data: ReportData) -> Figure | None:
    if not data.rebuffer_by_cdn:
        return None
    fig, ax = plt.subplots(figsize=(10, 4))
    for cdn, series in data.rebuffer_by_cdn.items():
        ax.plot(_times([ts for ts, _ in series]), [v for _, v in series], label=cdn)  # type: ignore[arg-type]
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_title("Rebuffer ratio by CDN")
    ax.legend(loc="upper left", ncols=min(4, len(data.rebuffer_by_cdn)))
    _time_axis(ax)
    return fig


def _dimension_bars(data: ReportData, title: str, value: Callable[[dict[str, float]], float]) -> Figure | None:
    dims = [d for d in DIMENSIONS if data.by_dimension.get(d)]
    if not dims:
        return None
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    for ax, dim in zip(axes.flat, DIMENSIONS, strict=True):
        rows = sorted(data.by_dimension.get(dim, {}).items(), key=lambda kv: value(kv[1]))[-10:]
        if not rows:
            ax.set_axis_off()
            continue
        ax.barh([k for k, _ in rows], [value(s) for _, s in rows], color="#e0752d")
        ax.xaxis.set_major_formatter(PercentFormatter(1.0))
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.set_title(f"by {dim}")
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(title)
    return fig


def rebuffer_by_dimension(data: ReportData) -> Figure | None:
    return _dimension_bars(data, "Rebuffer ratio over the range", rebuffer_ratio)


def failure_by_dimension(data: ReportData) -> Figure | None:
    return _dimension_bars(data, "Failure rate over the range", failure_rate)


def services(data: ReportData) -> Figure | None:
    if not data.services:
        return None
    names = list(data.services)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, max(3.0, 0.5 * len(names) + 1.5)))
    a1.barh(names, [data.services[n]["error_rate"] for n in names], color="#c4162a")
    a1.xaxis.set_major_formatter(PercentFormatter(1.0))
    a1.set_title("Error rate by service")
    a2.barh(names, [data.services[n]["p95_mean"] for n in names], color="#3274d9", label="mean p95")
    a2.barh(names, [data.services[n]["p99_worst"] for n in names], color="#3274d9", alpha=0.3, label="worst p99")
    a2.set_xlabel("ms")
    a2.set_title("Latency by service")
    a2.legend(loc="best")
    for ax in (a1, a2):
        ax.grid(axis="x", alpha=0.3)
    return fig


# File name -> (caption, chart builder), in page order.
CHARTS: dict[str, tuple[str, Callable[[ReportData], Figure | None]]] = {
    "qoe_timeline.png": ("Attempts, rebuffer ratio and failure rate over time", qoe_timeline),
    "startup.png": ("Startup time", startup),
    "rebuffer_by_cdn.png": ("Rebuffer ratio by CDN over time", rebuffer_by_cdn),
    "rebuffer_by_dimension.png": ("Rebuffer ratio by CDN, ISP, device and country", rebuffer_by_dimension),
    "failure_by_dimension.png": ("Failure rate by CDN, ISP, device and country", failure_by_dimension),
    "services.png": ("Service error rate and latency", services),
}


def render(data: ReportData, out: Path) -> dict[str, str]:
    """Write every chart that has data into ``out``; return {file name: caption} of those written."""
    written = {}
    for name, (caption, build) in CHARTS.items():
        fig = build(data)
        if fig is None:
            continue
        fig.tight_layout()
        fig.savefig(out / name, dpi=DPI)
        plt.close(fig)
        written[name] = caption
    return written
