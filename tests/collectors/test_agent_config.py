"""The agent's config file follows playscope.yaml's secret rules: ``${VAR}`` and ``*_file``."""

from __future__ import annotations

from pathlib import Path

import pytest

from collectors.agent.config import load_agent_config
from playscope.errors import ConfigError


def _write(tmp_path: Path, sink: str) -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text("inputs: [{paths: [/var/log/app/*.log]}]\nhost: '${NODE_NAME:-unknown-node}'\n"
                    f"sink:\n  type: http\n  url: http://collector:8080\n  {sink}\n")
    return path


def test_environment_variables_and_secret_files_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_KEY", "k-from-env")
    monkeypatch.setenv("NODE_NAME", "node-7")
    config = load_agent_config(_write(tmp_path, "api_key: '${AGENT_KEY}'"))
    assert (config.sink.api_key, config.host) == ("k-from-env", "node-7")
    secret = tmp_path / "key"
    secret.write_text("k-from-file\n")
    monkeypatch.delenv("NODE_NAME")
    config = load_agent_config(_write(tmp_path, f"api_key_file: {secret}"))
    assert (config.sink.api_key, config.host) == ("k-from-file", "unknown-node")


def test_an_unset_variable_names_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENT_KEY", raising=False)
    with pytest.raises(ConfigError, match=r"sink\.api_key: environment variable AGENT_KEY is not set"):
        load_agent_config(_write(tmp_path, "api_key: '${AGENT_KEY}'"))
