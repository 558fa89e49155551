"""``playscope report`` against demo-like data in the real Elasticsearch."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from conftest import Demo

from dashboards import report
from dashboards.errors import DashboardsError, Unreachable
from playscope.config import Settings
from playscope.timeparse import ms_to_rfc3339

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _run(settings: Settings, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    report.add_arguments(parser)
    return report.run(parser.parse_args(list(argv)), settings)


def test_report_writes_charts_and_page_with_the_right_numbers(demo: Demo, tmp_path: Path) -> None:
    out = tmp_path / "rep"
    start, end = ms_to_rfc3339(demo.data.start_ms), ms_to_rfc3339(demo.data.end_ms)
    assert _run(demo.settings, "--from", start, "--to", end, "--out", str(out)) == 0

    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == sorted(["qoe_timeline.png", "startup.png", "rebuffer_by_cdn.png", "rebuffer_by_dimension.png",
                           "failure_by_dimension.png", "services.png"])
    for name in pngs:
        blob = (out / name).read_bytes()
        assert blob.startswith(PNG_MAGIC) and len(blob) > 10_000, name
    page = (out / "index.html").read_text()
    for name in pngs:
        assert f"src='{name}'" in page

    totals = [d for d in demo.data.docs["qoe"] if d["group"] == "total"]
    attempts = sum(d["attempts"] for d in totals)
    ratio = sum(d["rebuffer_ms"] for d in totals) / sum(d["watched_ms"] for d in totals)
    assert f"<td>attempts</td><td>{attempts:,}</td>" in page
    assert f"<td>rebuffer ratio</td><td>{ratio * 100:.2f} %</td>" in page
    assert "<td>oca-7</td>" in page and "<td>api</td>" in page
    assert "cdn-rebuffering" in page and "class='firing'" in page


def test_report_reader_totals_match_the_documents(demo: Demo) -> None:
    from dashboards.report_data import ReportReader, failure_rate
    from dashboards.search import SearchClient

    with SearchClient(demo.settings.search) as client:
        data = ReportReader(client, demo.settings.index_prefix).read(demo.data.start_ms, demo.data.end_ms)
    totals = [d for d in demo.data.docs["qoe"] if d["group"] == "total"]
    assert data.windows == len(totals)
    assert len(data.timeline) == len(totals)  # one window per bucket at this range
    assert data.sessions == len(demo.data.docs["sessions"])
    cdn_docs = [d for d in demo.data.docs["qoe"] if d["group"] == "cdn" and d["cdn"] == "oca-7"]
    expected = sum(d["vsf"] + d["vpf"] for d in cdn_docs) / sum(d["ended"] for d in cdn_docs)
    assert failure_rate(data.by_dimension["cdn"]["oca-7"]) == pytest.approx(expected)
    assert set(data.services) == {"api", "auth", "origin"}
    assert [a["status"] for a in data.alerts].count("firing") == 2


def test_empty_range_still_writes_a_page(settings: Settings, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "empty"
    assert _run(settings, "--from", "2001-01-01", "--to", "2001-01-02", "--out", str(out)) == 0
    assert "No QoE windows" in (out / "index.html").read_text()
    assert list(out.glob("*.png")) == []
    assert "no QoE data" in capsys.readouterr().err


def test_bad_times_and_unreachable_cluster_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DashboardsError, match="cannot read time 'yesterday'"):
        _run(Settings(), "--from", "yesterday")
    with pytest.raises(DashboardsError, match="--to must be after --from"):
        _run(Settings(), "--from", "now", "--to", "now-1h")
    dead = Settings.model_validate({"elasticsearch": {"url": "http://127.0.0.1:9", "request_timeout_s": 2}})
    with pytest.raises(Unreachable, match=r"unreachable at http://127\.0\.0\.1:9"):
        _run(dead, "--from", "now-1h", "--out", str(tmp_path / "x"))


def test_parse_when() -> None:
    now = 1_700_000_000_000
    assert report.parse_when("now", now) == now
    assert report.parse_when("now-6h", now) == now - 6 * 3_600_000
    assert report.parse_when("2024-05-01", now) == 1_714_521_600_000
    assert report.parse_when("1714521600000", now) == 1_714_521_600_000
    assert report.parse_when("2024-05-01T00:00:01Z", now) == 1_714_521_601_000


def test_without_matplotlib_the_report_says_which_extra_to_install(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if the `report` extra were not installed
    monkeypatch.delitem(sys.modules, "dashboards.report_charts", raising=False)
    import dashboards

    monkeypatch.delattr(dashboards, "report_charts", raising=False)  # imported by an earlier test
    from playscope.config import load_settings

    with pytest.raises(DashboardsError, match=r"pip install 'playscope\[report\]'"):
        report.build_report(load_settings(environ={}), 1, 2, tmp_path / "out")
