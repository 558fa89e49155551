"""The capacity model on hand-computed cases, its errors, and the verb on a fixture bench report."""

from __future__ import annotations

import copy
import math
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from playscope import cli
from playscope.capacity import encoding, figures, model, plan, prices
from playscope.capacity.figures import MissingFigure
from playscope.capacity.model import GIB, Load, Policy
from playscope.capacity.report import build
from playscope.errors import ConfigError

FIXTURE = Path(__file__).with_name("bench-fixture.json")  # SPEC 11's shape, not a real run


def fixture_report() -> dict[str, Any]:
    return orjson.loads(FIXTURE.read_bytes())


def test_one_million_viewers_heartbeats_and_cmcd_requests() -> None:
    steady = model.rates(Load(viewers=1_000_000, heartbeat_s=10, session_minutes=30))
    assert steady.heartbeat_events == 100_000
    assert steady.cmcd_requests == 0
    assert steady.lifecycle_events == pytest.approx(3 * 1_000_000 / 1800)
    assert steady.requests == steady.events == pytest.approx(100_000 + 1_666.667, rel=1e-6)
    cmcd = model.rates(Load(viewers=1_000_000, heartbeat_s=10, cmcd_requests=True, segment_s=2))
    assert cmcd.cmcd_requests == 500_000
    assert cmcd.requests - steady.requests == pytest.approx(500_000)


def test_regions_split_the_load_and_a_surge_multiplies_viewers() -> None:
    assert model.rates(Load(viewers=1_000_000, regions=4)).heartbeat_events == 25_000
    surge = model.rates(Load(viewers=1_000_000), factor=10)
    assert surge.heartbeat_events == 1_000_000 and surge.viewers == 10_000_000
    assert surge.qoe_windows == model.rates(Load(viewers=1_000_000)).qoe_windows  # groups, not viewers


def test_cores_are_load_over_per_core_rate_over_utilisation_rounded_up() -> None:
    assert model.cores_for_rate(100_000, 28_125, 0.6) == math.ceil(100_000 / 28_125 / 0.6) == 6
    # 100,000 x 120 us = 12 cores of CPU, / 0.6 = 20 (not 21 from 20.000000000000004)
    assert model.cores_for_cpu(100_000, 120, 0.6) == 20
    assert model.cores_for_cpu(100_001, 120, 0.6) == 21
    assert model.cores_for_rate(0, 28_125, 0.6) == 0


def test_partitions_brokers_disk_and_instances() -> None:
    assert model.partitions(100_000, 17_900, 0.6) == 10  # 9.31 rounded up
    assert model.partitions(3, 17_900, 0.6) == 1
    assert model.retained_bytes(1000, 7, 3) == 1000 * 7 * 86_400 * 3
    into, out = model.broker_traffic(10e6, Policy(replication_factor=3, consumer_groups=2))
    assert (into, out) == (30e6, 40e6)
    assert model.nodes_for_network(40e6, 1.5625, 0.5) == math.ceil(40e6 / (1.5625e9 / 8 * 0.5)) == 1
    assert model.nodes_for_network(400e6, 1.5625, 0.5) == 5  # 4.096
    assert model.nodes_for_disk(10 * 2**40, 4096, 0.7) == 4  # 10 TiB over 2.8 TiB usable per node
    assert model.instances(7, 5.7, vcpu=4, gib=16, memory_fill=0.7) == 2  # CPU-bound
    assert model.instances(1, 57, vcpu=4, gib=16, memory_fill=0.7) == 6  # memory-bound: 57 / 11.2
    assert model.instances(0, 0, vcpu=4, gib=16, memory_fill=0.7) == 0


def test_lag_catch_up_and_absorption() -> None:
    assert model.lag_growth(1_000_000, 200_000) == 800_000
    assert model.lag_growth(100, 200_000) == 0
    assert model.catch_up_s(800_000 * 60, 200_000, 100_000) == 480
    assert model.catch_up_s(1, 100, 100) == math.inf
    assert model.absorb_s(3600e6, 1e6) == 3600
    assert model.absorb_s(1, 0) == math.inf


def test_a_missing_figure_is_named() -> None:
    report = fixture_report()
    del report["streams"]["state"]["bytes_per_open_session"]
    with pytest.raises(MissingFigure, match=r"streams\.state\.bytes_per_open_session is missing"):
        figures.from_report(report, "bench.json")
    failed = fixture_report()
    failed["indexer"] = {"error": "RuntimeError: boom"}
    with pytest.raises(MissingFigure, match=r"indexer\.cpu_us_per_doc\.indexer is missing: stage indexer failed"):
        figures.from_report(failed, "bench.json")
    zero = fixture_report()
    zero["streams"]["events_per_s"] = 0
    with pytest.raises(MissingFigure, match=r"streams\.events_per_s is 0"):
        figures.from_report(zero, "bench.json")


def test_the_agent_figure_is_needed_only_with_log_lines() -> None:
    report = fixture_report()
    del report["agent"]
    assert figures.from_report(report, "b").agent_cpu_us_per_line is None
    with pytest.raises(MissingFigure, match=r"agent\.agent_cpu_us_per_line"):
        figures.from_report(report, "b", need_agent=True)
    without = figures.from_report(report, "b")
    with pytest.raises(MissingFigure, match=r"agent\.agent_cpu_us_per_line is missing"):
        build(Load(viewers=1000, log_lines_per_s=10), Policy(), without, prices.load())


def test_kafka_bytes_are_measured_when_bench_has_them_else_computed() -> None:
    measured, note = encoding.sizes(111.8, 227.5, 48.9)
    assert measured["playback"].kafka == 48.9 and "measured" in note
    assert measured["sessions"].index == pytest.approx(encoding.json_bytes("sessions") * 111.8 / 227.5)
    computed, note = encoding.sizes(111.8, 227.5, None)
    assert computed["playback"].kafka == 227.5 + encoding.KEY_BYTES + encoding.RECORD_OVERHEAD
    assert "computed" in note
    report = fixture_report()
    del report["indexer"]["kafka_bytes_per_event"]
    assert figures.from_report(report, "b").kafka_bytes_per_event is None


def _sizing(**load: Any) -> dict[str, Any]:
    measured = figures.load(FIXTURE, need_agent=bool(load.get("log_lines_per_s")))
    return build(Load(**{"viewers": 1_000_000, **load}), Policy(), measured, prices.load())


def test_sizing_from_the_fixture_by_hand() -> None:
    result = _sizing()
    region = result["per_region"]
    requests = 100_000 + 3 * 1_000_000 / 1800
    cores = {c["name"]: c["cores"] for c in region["components"]}
    assert cores == {"collector": math.ceil(requests * 120e-6 / 0.6),  # 20.33 -> 21
                     "streams": math.ceil(requests / 28_125 / 0.6),  # 6.02 -> 7
                     "indexer": math.ceil((requests + 1_000_000 / 1800 + 2200 / 60) * 20e-6 / 0.6)}
    events = next(t for t in region["kafka"]["topics"] if t["name"] == "playscope.playback.events")
    assert events["partitions"] == math.ceil(requests / 17_900 / 0.6)  # the slower consumer: the indexer
    assert events["disk_bytes"] == pytest.approx(requests * 48.9 * 7 * 86_400 * 3)
    assert region["search"]["disk_bytes_by_family"]["playback"] == pytest.approx(requests * 111.8 * 30 * 86_400 * 2)
    assert region["streams_state"]["memory_gib"] == pytest.approx(1_000_000 * 6118 / GIB)
    assert region["kafka"]["brokers"] >= 3 and region["search"]["nodes"] >= 3
    assert "agent" not in cores
    cost = result["cost_per_month"]
    assert 0 < cost["low_usd"] < cost["high_usd"]


def test_cmcd_and_logs_add_load_and_the_agent() -> None:
    plain, cmcd = _sizing(), _sizing(cmcd_requests=True, log_lines_per_s=50_000)
    assert cmcd["per_region"]["rates_per_s"]["requests"] - plain["per_region"]["rates_per_s"]["requests"] \
        == pytest.approx(500_000)
    cores = {c["name"]: c["cores"] for c in cmcd["per_region"]["components"]}
    assert cores["agent"] == math.ceil(50_000 * 6.4e-6 / 0.6)
    assert cmcd["cost_per_month"]["low_usd"] > plain["cost_per_month"]["low_usd"]


def test_surge_needs_and_what_absorbs_it() -> None:
    result = _sizing()
    surge, region = result["surge"], result["per_region"]
    collector = next(c for c in region["components"] if c["name"] == "collector")
    capacity = collector["cores"] * 1e6 / 120
    offered = collector["load_per_s"] * 10
    assert surge["collector"]["refused_fraction_unscaled"] == pytest.approx(1 - capacity / offered)
    assert surge["needs"]["cores"]["collector"] == math.ceil(collector["load_per_s"] * 10 * 120e-6 / 0.6)
    streams = surge["lag"]["streams"]
    steady_streams = next(c for c in region["components"] if c["name"] == "streams")
    assert streams["capacity_per_s"] == steady_streams["cores"] * 28_125
    assert streams["lag_growth_per_s"] == pytest.approx(steady_streams["load_per_s"] * 10 - streams["capacity_per_s"])
    kafka = surge["kafka"]
    used = region["kafka"]["disk_bytes"]
    assert kafka["free_disk_bytes"] == pytest.approx(used / 0.7 - used)
    assert kafka["absorbs_s"] == pytest.approx(kafka["free_disk_bytes"] / kafka["extra_bytes_per_s"], rel=1e-3)
    limits = [kafka["absorbs_s"], *(v["longest_surge_within_retention_s"] for v in surge["lag"].values())]
    assert surge["absorbable_s"] == min(v for v in limits if v is not None)
    assert surge["spool"]["bytes"] == collector["cores"] * 512 * 2**20
    # brokers and search nodes for the surge's traffic, not for ten times the retained data
    assert surge["needs"]["search_nodes"] < 10 * region["search"]["nodes"]
    assert surge["extra_usd_per_hour"] > 0


def test_prices_are_checked_and_overridable(tmp_path: Path) -> None:
    tree = yaml.safe_load(prices.DEFAULT.read_text())
    assert tree["as_of"] and tree["source"]
    broken = copy.deepcopy(tree)
    del broken["roles"]["search"]["max_disk_gib"]
    with pytest.raises(ConfigError, match=r"roles\.search\.max_disk_gib: missing"):
        prices.parse(broken, "p.yaml")
    dearer = copy.deepcopy(tree)
    for spec in dearer["instances"].values():
        spec["usd_per_hour"] *= 2
    path = tmp_path / "prices.yaml"
    path.write_text(yaml.safe_dump(dearer))
    measured = figures.load(FIXTURE)
    base = build(Load(viewers=100_000), Policy(), measured, prices.load())["cost_per_month"]
    double = build(Load(viewers=100_000), Policy(), measured, prices.load(path))["cost_per_month"]
    assert double["low_usd"] - double["disk_usd_per_region"] == pytest.approx(2 * (base["low_usd"]
                                                                               - base["disk_usd_per_region"]))


def test_retention_comes_from_the_provisioned_topics() -> None:
    assert plan.RETENTION_DAYS["playscope.playback.events"] == 7
    assert plan.RETENTION_DAYS["playscope.qoe.sessions"] == 30


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(["capacity", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_json_on_the_fixture(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--viewers", "1000000", "--cmcd-requests", "--bench", str(FIXTURE), "--json")
    assert code == 0
    result = orjson.loads(out)
    assert result["per_region"]["rates_per_s"]["heartbeat_events"] == 100_000
    assert result["per_region"]["rates_per_s"]["cmcd_requests"] == 500_000
    assert result["bench"]["file"] == str(FIXTURE)
    assert result["bench"]["figures"]["streams.events_per_s"] == 28_125
    assert any("CMCD request beacon per 2 s" in line for line in result["assumptions"])
    assert result["surge"]["factor"] == 10


def test_cli_tables_state_assumptions_and_figures(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--viewers", "1000000", "--bench", str(FIXTURE))
    assert code == 0
    for text in ("components per region", "10x surge", "monthly cost", "assumptions:",
                 "streams.state.bytes_per_open_session = 6,118"):
        assert text in out


def test_cli_missing_figure_and_default_bench_file(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PLAYSCOPE_HOME", str(tmp_path / "home"))
    code, _, err = _run(capsys, "--viewers", "1000")
    assert code == 1 and "no bench report in" in err
    from bench.cli import reports_dir, save_report

    report = fixture_report()
    del report["collector"]["by_events_per_request"]
    older = reports_dir(tmp_path / "home") / "bench-20000101T000000Z.json"
    older.parent.mkdir(parents=True)
    shutil.copy(FIXTURE, older)
    newest = save_report(tmp_path / "home", report)  # a partial rerun: the older full report is used
    code, out, _ = _run(capsys, "--viewers", "1000", "--json")
    assert code == 0 and orjson.loads(out)["bench"]["file"] == str(older)
    code, _, err = _run(capsys, "--viewers", "1000", "--bench", str(newest))
    assert code == 1
    assert "collector.by_events_per_request.1.collector_cpu_us_per_event is missing" in err
    older.unlink()  # no complete report left: the newest one's missing figure is named
    code, _, err = _run(capsys, "--viewers", "1000")
    assert code == 1 and "no bench report in" in err and "collector_cpu_us_per_event is missing" in err


def test_cli_refuses_bad_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["capacity", "--viewers", "0", "--bench", str(FIXTURE)])
    with pytest.raises(SystemExit):
        cli.main(["capacity", "--viewers", "10", "--utilisation", "1.5", "--bench", str(FIXTURE)])
