"""Secrets come from the environment or files, never the command line, and never reach a log line
or ``--print-config``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from playscope.config import Settings, load_settings
from playscope.errors import ConfigError
from playscope.stack.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
PLAYSCOPE = [sys.executable, "-m", "playscope.cli"]


def test_env_expansion_and_secret_files(tmp_path: Path) -> None:
    pw = tmp_path / "kafka.pw"
    pw.write_text("from-a-file\n")
    cfg = tmp_path / "playscope.yaml"
    cfg.write_text(yaml.safe_dump({
        "kafka": {"security": {"protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "username": "app",
                               "password_file": str(pw)}},
        "elasticsearch": {"url": "https://es:9200", "password": "${ES_PW}", "username": "${ES_USER:-elastic}"},
        "collector": {"privacy": {"secret": "${PRIV}"}},
    }))
    settings = load_settings(cfg, environ={"ES_PW": "es-secret", "PRIV": "p" * 20})
    assert settings.kafka.security.password == "from-a-file"
    assert settings.elasticsearch.password == "es-secret" and settings.elasticsearch.username == "elastic"
    assert settings.raw("collector")["privacy"]["secret"] == "p" * 20
    with pytest.raises(ConfigError, match=r"elasticsearch.password: environment variable ES_PW is not set"):
        load_settings(cfg, environ={"PRIV": "x"})
    # Files given through the environment work too.
    env = {"PLAYSCOPE__ELASTICSEARCH__PASSWORD_FILE": str(pw)}
    assert load_settings(environ=env).elasticsearch.password == "from-a-file"
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(environ={"PLAYSCOPE__ELASTICSEARCH__PASSWORD_FILE": str(tmp_path / "missing")})


def test_no_cli_flag_takes_a_secret() -> None:
    from playscope.cli import VERBS, _verb_parser

    for name, verb in VERBS.items():
        try:
            module = __import__(verb.module, fromlist=["add_arguments"])
        except ModuleNotFoundError:
            continue
        parser = _verb_parser(name)
        module.add_arguments(parser)
        flags = [s for a in parser._actions for s in a.option_strings]
        bad = [f for f in flags if any(w in f for w in ("password", "secret", "token", "api-key", "apikey"))]
        assert not bad, f"playscope {name} takes a secret on the command line: {bad}"


def _secret_config(tmp_path: Path, port: int) -> tuple[Path, dict[str, str], list[str]]:
    secrets = ["kafka-sasl-pw-1234", "es-basic-pw-5678", "privacy-secret-abcdefgh", "api-key-plain-9999"]
    (tmp_path / "es.pw").write_text(secrets[1])
    cfg = tmp_path / "playscope.yaml"
    cfg.write_text(yaml.safe_dump({
        "kafka": {"security": {"password": "${T_KAFKA_PW}"}},
        "elasticsearch": {"url": "http://elastic:${T_KAFKA_PW}@localhost:9200",
                          "password_file": str(tmp_path / "es.pw")},
        "collector": {"host": "127.0.0.1", "port": port, "privacy": {"secret": "${T_PRIV}"},
                      "api_keys": [secrets[3]]},
    }))
    env = {**os.environ, "T_KAFKA_PW": secrets[0], "T_PRIV": secrets[2], "PYTHONPATH": str(ROOT)}
    return cfg, env, secrets


def test_print_config_masks_secrets(tmp_path: Path) -> None:
    cfg, env, secrets = _secret_config(tmp_path, 8080)
    out = subprocess.run([*PLAYSCOPE, "collector", "--config", str(cfg), "--print-config"], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=60, check=True)
    printed = yaml.safe_load(out.stdout)
    assert printed["kafka"]["security"]["password"] == "***"
    assert printed["collector"]["privacy"]["secret"] == "***" and printed["collector"]["api_keys"] == "***"
    assert printed["elasticsearch"]["url"] == "http://elastic:***@localhost:9200"
    for secret in secrets:
        assert secret not in out.stdout + out.stderr


def test_no_secret_in_the_logs_of_a_collector_run(settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    cfg, env, secrets = _secret_config(tmp_path, port)
    with cfg.open("a") as f:
        f.write(f"topic_prefix: '{settings.topic_prefix}'\n")
    proc = subprocess.Popen([*PLAYSCOPE, "collector", "--config", str(cfg), "--log-level", "DEBUG"], env=env,
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode()  # type: ignore[union-attr]
            time.sleep(0.2)
        event = {"event_id": "sec-1", "session_id": "s", "ts": int(time.time() * 1000), "type": "session_start",
                 "profile_id": "viewer-42"}
        ok = httpx.post(f"{url}/v1/events", json=[event], headers={"X-API-Key": secrets[3]}, timeout=30)
        assert ok.status_code == 202, ok.text
        wrong = httpx.post(f"{url}/v1/events", json=[event], headers={"X-API-Key": secrets[0]}, timeout=30)
        assert wrong.status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    logs = (out + err).decode()
    assert "collector.started" in logs and "collector.stopped" in logs
    for secret in secrets:
        assert secret not in logs


def test_prefixed_secret_keys_are_masked_and_read_from_files_but_tls_key_file_stays_a_path(tmp_path: Path) -> None:
    from playscope.secrets import redacted, resolve_secrets

    token = tmp_path / "grafana.token"
    token.write_text("glsa_0123456789\n")
    tree = {"dashboards": {"grafana_password": "pw-1", "grafana_token_file": str(token), "kibana_password": "pw-2",
                           "kibana_api_key": "k-3"},
            "collector": {"tls": {"cert_file": "/etc/c.pem", "key_file": "/etc/k.pem"}}}
    resolved = resolve_secrets(tree, {}, "test.yaml")
    assert resolved["dashboards"]["grafana_token"] == "glsa_0123456789"
    assert resolved["collector"]["tls"]["key_file"] == "/etc/k.pem"
    masked = redacted(resolved)
    assert set(masked["dashboards"].values()) == {"***"}
    assert masked["collector"]["tls"] == {"cert_file": "/etc/c.pem", "key_file": "/etc/k.pem"}
