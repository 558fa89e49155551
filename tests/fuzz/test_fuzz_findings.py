"""The bugs the fuzz suite found, one test each, named for what went wrong (no servers)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from alerts.loader import RulesError, load_rules
from collectors.http.cmcd_config import CmcdConfig
from collectors.http.cmcd_ingest import CmcdIngest, TextReport
from collectors.http.cmcd_metrics import CmcdMetrics
from playscope.config import Settings, load_settings
from playscope.errors import ConfigError

NOW_MS = int(time.time() * 1000)


def test_a_media_url_urlsplit_cannot_read_leaves_the_cdn_unknown_not_the_report_refused() -> None:
    """Found by tests/fuzz/test_cmcd_decoder.py: ``http://[::1/seg`` in ``nor``, ``url`` or a CDN
    key made urlsplit raise ValueError, so the whole report was refused ("cannot be processed:
    ValueError") instead of keeping the report with its CDN unknown."""
    config = CmcdConfig(cdn_hosts={"edge-1.example.net": "akamai"}, cdn_keys=["com.example-cdn"])
    ingest = CmcdIngest(Settings(), config, CmcdMetrics(CollectorRegistry()))
    reports = [{"sid": "s-1", "nor": "http://[::1/seg"},
               TextReport(f'sid="s-2",v=2,e=ps,sta=p,ts={NOW_MS},url="http://[::1/seg"'),
               {"sid": "s-3", "com.example-cdn": "http://[zz]/x", "cdn": "own"}]
    mapped = ingest.map_reports(reports, NOW_MS, {})
    events = [result for result in mapped if isinstance(result, list)]
    assert [len(result) for result in events] == [1, 1, 1], mapped
    assert "cdn" not in events[0][0] and "cdn" not in events[1][0]


def test_a_secret_file_that_is_not_utf8_text_or_has_a_nul_in_its_path_is_a_config_error(tmp_path: Path) -> None:
    """Found by tests/fuzz/test_config_loaders.py: UnicodeDecodeError (a binary secret file) and
    ValueError (``password_file: "a\\0b"``) escaped load_settings instead of a ConfigError."""
    (tmp_path / "binary.bin").write_bytes(b"\xff\xfe\x00\x81")
    config = tmp_path / "playscope.yaml"
    for value, reason in ((str(tmp_path / "binary.bin"), "not UTF-8 text"), ("a\\0b", "embedded null byte")):
        config.write_text(f'elasticsearch:\n  password_file: "{value}"\n')
        with pytest.raises(ConfigError) as caught:
            load_settings(config, environ={})
        assert str(caught.value).startswith(f"{config}: elasticsearch.password_file: cannot read ")
        assert reason in str(caught.value)


def test_a_secret_file_path_with_a_line_break_is_quoted_so_the_error_stays_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by tests/fuzz/test_config_loaders.py: ``PLAYSCOPE__PASSWORD_FILE`` set to a path with a
    newline split the error, its second line naming neither the file nor the key."""
    monkeypatch.chdir(tmp_path)  # no playscope.yaml here
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"PLAYSCOPE__ELASTICSEARCH__PASSWORD_FILE": "/run/x\ny"})
    assert str(caught.value) == ("configuration: elasticsearch.password_file: cannot read '/run/x\\ny': "
                                 "No such file or directory")

def test_a_rules_file_with_a_number_or_null_as_a_top_level_key_is_a_rules_error(tmp_path: Path) -> None:
    """Found by tests/fuzz/test_config_loaders.py: ``1: x`` at the top of a rules file raised
    TypeError (the unknown keys were joined as strings) instead of a RulesError naming them."""
    rules = tmp_path / "rules.yaml"
    rules.write_text("1: x\nnull: y\nrules: []\n")
    with pytest.raises(RulesError) as caught:
        load_rules(rules, environ={})
    assert str(caught.value) == f"{rules}: 1, None: unknown key (expected channels, rules)"
