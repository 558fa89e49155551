"""The ``playscope`` command's habits: --version, help without a verb, flag errors without
tracebacks, the environment named in --help, --since in both forms."""

from __future__ import annotations

import subprocess
import sys

import pytest

from playscope.errors import ValidationError
from playscope.timeparse import parse_ts_text


def _playscope(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "playscope.cli", *args], capture_output=True, text=True,
                          timeout=60)


def test_version_at_the_top_and_on_a_verb() -> None:
    from playscope.cli import version

    for args in (("--version",), ("-V",), ("stack", "--version")):
        done = _playscope(*args)
        assert done.returncode == 0 and done.stdout.strip() == f"playscope {version()}", done
    assert version() != "unknown"


def test_playscope_alone_prints_help_and_exits_0() -> None:
    done = _playscope()
    assert done.returncode == 0 and "verbs:" in done.stdout and "collector" in done.stdout


def test_a_bad_log_level_is_a_usage_error_not_a_traceback() -> None:
    done = _playscope("stack", "status", "--log-level", "foo")
    assert done.returncode == 2 and "invalid choice: 'FOO'" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert _playscope("stack", "status", "--log-level", "warning", "--print-config").returncode == 0


def test_help_names_the_environment_variables() -> None:
    collector = _playscope("collector", "--help").stdout
    for name in ("PLAYSCOPE_KAFKA", "PLAYSCOPE_ES", "PLAYSCOPE_HOME", "PLAYSCOPE__SECTION__KEY"):
        assert name in collector, name
    assert "PLAYSCOPE_METRICS_HOST" in _playscope("agent", "--help").stdout


@pytest.mark.parametrize(("text", "ms"), [("1700000000000", 1_700_000_000_000),
                                          (" 1700000000000 ", 1_700_000_000_000),
                                          ("2023-11-14T22:13:20Z", 1_700_000_000_000)])
def test_since_takes_epoch_ms_and_rfc3339(text: str, ms: int) -> None:
    assert parse_ts_text(text, "--since") == ms


@pytest.mark.parametrize("text", ["yesterday", "17000000000000000000000", "²", "-5"])
def test_a_bad_since_names_the_flag(text: str) -> None:
    with pytest.raises(ValidationError, match="--since"):
        parse_ts_text(text, "--since")
