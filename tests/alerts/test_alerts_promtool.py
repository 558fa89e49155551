"""The Prometheus rules for pipeline health pass their promtool unit tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

RULES_DIR = Path(__file__).parents[2] / "alerts" / "prometheus"


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not installed (Debian package prometheus)")
    return path


def test_rules_are_valid() -> None:
    done = subprocess.run([_promtool(), "check", "rules", "pipeline.rules.yml"], cwd=RULES_DIR,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "7 rules found" in done.stdout


def test_promtool_rule_tests_pass() -> None:
    done = subprocess.run([_promtool(), "test", "rules", "pipeline.test.yml"], cwd=RULES_DIR,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout
