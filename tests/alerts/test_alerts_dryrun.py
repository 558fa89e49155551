"""--dry-run: the rules replayed over windows already in Elasticsearch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import yaml
from alerts_helpers import W, qoe_window

from alerts.dryrun import dry_run
from alerts.loader import load_rules
from playscope.config import Settings
from playscope.indices import FAMILIES, window_doc_id

HERE = Path(__file__).parent


def _index(es: Any, settings: Settings, records: list[tuple[str, dict[str, Any]]]) -> None:
    for family, record in records:
        index = FAMILIES[family].index_for(record, settings.index_prefix)
        es.index(index=index, id=window_doc_id(record), document=record)
    es.indices.refresh(index=f"{settings.index_prefix}playscope-*")


def _service_window(i: int, service: str, error_rate: float) -> dict[str, Any]:
    start = qoe_window(i, "x", 0)["window_start"]
    return {"window_start": start, "window_end": start + W, "group": "service", "service": service,
            "requests": 500, "errors": int(500 * error_rate), "error_rate": error_rate}  # fmt: skip


def test_dry_run_replays_stored_windows(settings: Settings, es: Any, tmp_path: Path) -> None:
    records = [("qoe", qoe_window(i, "a", 0.2 if i in (1, 2, 3) else 0.0)) for i in range(6)]
    records += [("qoe", qoe_window(i, "b", 0.0)) for i in range(2)]  # b stops after window 1
    records += [("service", _service_window(i, "api", 0.1)) for i in range(6)]
    _index(es, settings, records)
    rules = tmp_path / "rules.yaml"
    rules.write_text((HERE / "spec9_rules.yaml").read_text() + """
  - {name: api-errors, source: service, metric: error_rate, group_by: [service], op: ">", threshold: 0.02,
     for: 3, min_volume: 50}
""")  # fmt: skip
    docs = dry_run(settings, load_rules(rules))
    got = [(d["rule"], d["group_key"], d["status"], d["window_start"]) for d in docs]
    t0 = records[0][1]["window_start"]
    assert ("cdn-rebuffering", "cdn=a", "firing", t0 + 2 * W) in got
    assert ("cdn-rebuffering", "cdn=a", "resolved", t0 + 4 * W) in got
    assert ("cdn-silent", "cdn=b", "firing", t0 + 2 * W) in got  # judged on stream time
    assert ("api-errors", "service=api", "firing", t0 + 2 * W) in got
    assert len(got) == 4

    # the CLI prints the same, one JSON document per line
    config = tmp_path / "playscope.yaml"
    config.write_text(yaml.safe_dump({"topic_prefix": settings.topic_prefix,
                                      "index_prefix": settings.index_prefix}))  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "playscope.cli", "alerts", "-r", str(rules), "--dry-run",
                           "--json", "--config", str(config)], capture_output=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    lines = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert [(d["rule"], d["status"]) for d in lines] == [(d["rule"], d["status"]) for d in docs]


def test_check_reports_errors_with_exit_code(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - {name: x, source: qoe, metric: nope, op: '>', threshold: 1}\n")
    done = subprocess.run([sys.executable, "-m", "playscope.cli", "alerts", "-r", str(bad), "--check"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1
    assert f"{bad}: rule 'x': metric: 'nope' is not a qoe metric" in done.stderr
    spec = str(HERE / "spec9_rules.yaml")
    ok = subprocess.run([sys.executable, "-m", "playscope.cli", "alerts", "-r", spec, "--check"],
                        capture_output=True, text=True, timeout=60)  # fmt: skip
    assert ok.returncode == 0 and "2 rules, 2 channels" in ok.stdout
