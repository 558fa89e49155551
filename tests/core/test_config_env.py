"""PLAYSCOPE__SECTION__KEY overrides: typed by the key's model, secrets taken as written."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts.config import AlertsConfig
from collectors.agent.config import AgentConfig
from collectors.http.config import CollectorConfig
from dashboards.config import DashboardsConfig
from indexers.config import IndexerConfig
from playscope.config import Strict, env_value, is_secret_name, load_settings
from playscope.errors import ConfigError

# what YAML made of these: 123456, 511, True, 1000.0 (or "1e3"), None, ["x"], {"a": "b"}, None, 31, 1000, True
LOOKALIKES = ["123456", "0777", "yes", "1e3", "null", "[x]", "{a: b}", "~", "0x1F", "1_000", "true", "#x", "a: b"]


@pytest.mark.parametrize("value", LOOKALIKES)
def test_core_secrets_are_taken_as_written(value: str) -> None:
    s = load_settings(environ={
        "PLAYSCOPE__KAFKA__SECURITY__PASSWORD": value,
        "PLAYSCOPE__ELASTICSEARCH__PASSWORD": value,
        "PLAYSCOPE__ELASTICSEARCH__API_KEY": value,
        "PLAYSCOPE__OPENSEARCH__PASSWORD": value,
        "PLAYSCOPE__PRIVACY__SECRET": value * 16,  # at least 16 characters
    })  # fmt: skip
    assert s.kafka.security.password == value
    assert s.elasticsearch.password == value and s.elasticsearch.api_key == value
    assert s.opensearch.password == value
    assert s.privacy.secret == value * 16


@pytest.mark.parametrize("value", LOOKALIKES)
def test_component_secrets_are_taken_as_written(value: str) -> None:
    s = load_settings(environ={
        "PLAYSCOPE__DASHBOARDS__GRAFANA_TOKEN": value,
        "PLAYSCOPE__DASHBOARDS__GRAFANA_PASSWORD": value,
        "PLAYSCOPE__DASHBOARDS__KIBANA_PASSWORD": value,
        "PLAYSCOPE__DASHBOARDS__KIBANA_API_KEY": value,
        "PLAYSCOPE__COLLECTOR__TLS__CERT_FILE": "/c.pem",
        "PLAYSCOPE__COLLECTOR__TLS__KEY_FILE": "/k.pem",
        "PLAYSCOPE__COLLECTOR__TLS__KEY_PASSWORD": value,
        "PLAYSCOPE__AGENT__INPUTS": "[{paths: [/var/log/*.log]}]",
        "PLAYSCOPE__AGENT__SINK__API_KEY": value,
    })  # fmt: skip
    dash = s.section("dashboards", DashboardsConfig)
    assert (dash.grafana_token, dash.grafana_password, dash.kibana_password, dash.kibana_api_key) == (value,) * 4
    tls = s.section("collector", CollectorConfig).tls
    assert tls is not None and tls.key_password == value and tls.key_file == Path("/k.pem")
    agent = s.section("agent", AgentConfig)
    assert agent.sink.api_key == value and agent.inputs[0].paths == ["/var/log/*.log"]


class Mail(Strict):
    smtp_password: str | None = None
    smtp_port: int = 25
    starttls: bool = False
    timeout_s: float = 10.0


def test_a_section_types_each_value_by_its_field() -> None:
    s = load_settings(environ={"PLAYSCOPE__ALERTS__SMTP_PASSWORD": "123456", "PLAYSCOPE__ALERTS__SMTP_PORT": "0587",
                               "PLAYSCOPE__ALERTS__STARTTLS": "yes", "PLAYSCOPE__ALERTS__TIMEOUT_S": "1e3"})
    mail = s.section("alerts", Mail)
    assert (mail.smtp_password, mail.smtp_port, mail.starttls, mail.timeout_s) == ("123456", 587, True, 1000.0)


def test_plain_strings_that_look_like_numbers_stay_strings() -> None:
    s = load_settings(environ={"PLAYSCOPE__TOPIC_PREFIX": "2026", "PLAYSCOPE__INDEX_PREFIX": "no",
                               "PLAYSCOPE__KAFKA__INSTANCE_ID": "007", "PLAYSCOPE__KAFKA__SECURITY__USERNAME": "0777",
                               "PLAYSCOPE__KAFKA__BOOTSTRAP": "10.0.0.1:9092"})  # fmt: skip
    assert (s.topic_prefix, s.index_prefix, s.kafka.instance_id) == ("2026", "no", "007")
    assert s.kafka.security.username == "0777" and s.kafka.bootstrap == "10.0.0.1:9092"


def test_numbers_booleans_and_collections_are_typed_by_the_model() -> None:
    s = load_settings(environ={
        "PLAYSCOPE_WINDOW_S": "5", "PLAYSCOPE_COLLECTOR_PORT": "9000",
        "PLAYSCOPE__KAFKA__PARTITIONS": "12", "PLAYSCOPE__KAFKA__STATIC_MEMBERSHIP": "off",
        "PLAYSCOPE__KAFKA__SESSION_TIMEOUT_S": "4.5e1", "PLAYSCOPE__MAX_TS_AGE_S": "1_000",
        "PLAYSCOPE__ALERTS__ABSENT_WALL_FALLBACK": "no", "PLAYSCOPE__ALERTS__METRICS_PORT": "0",
        "PLAYSCOPE__COLLECTOR__ALLOWED_ORIGINS": "[https://a.example, https://b.example]",
        "PLAYSCOPE__COLLECTOR__API_KEYS": "[123456, 0777, yes]",
        "PLAYSCOPE__COLLECTOR__CMCD__CDN_HOSTS": "{cdn1.example: akamai, 10.0.0.1: own}",
        "PLAYSCOPE__INDEXER__FAMILIES": "[qoe, alerts]",
    })  # fmt: skip
    assert (s.window_s, s.kafka.partitions, s.kafka.static_membership) == (5, 12, False)
    assert (s.kafka.session_timeout_s, s.max_ts_age_s) == (45.0, 1000)
    alerts = s.section("alerts", AlertsConfig)
    assert alerts.absent_wall_fallback is False and alerts.metrics_port == 0
    collector = s.section("collector", CollectorConfig)
    assert collector.port == 9000
    assert collector.allowed_origins == ["https://a.example", "https://b.example"]
    assert collector.api_keys == ["123456", "0777", "yes"]  # items of a list stay text too
    assert collector.cmcd.cdn_hosts == {"cdn1.example": "akamai", "10.0.0.1": "own"}
    assert s.section("indexer", IndexerConfig).families == ("qoe", "alerts")


def test_environment_overrides_the_file_and_empty_variables_are_ignored(tmp_path: Path) -> None:
    cfg = tmp_path / "p.yaml"
    cfg.write_text("kafka: {partitions: 3, security: {username: u, password: from-file}}\n")
    s = load_settings(cfg, environ={"PLAYSCOPE__KAFKA__SECURITY__PASSWORD": "0123",
                                    "PLAYSCOPE__KAFKA__PARTITIONS": "", "PLAYSCOPE_KAFKA": ""})  # fmt: skip
    assert s.kafka.security.password == "0123" and s.kafka.partitions == 3
    assert s.kafka.bootstrap == "localhost:9092"


def test_secret_files_named_by_the_environment_are_read_as_text(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("0777\n")
    s = load_settings(environ={"PLAYSCOPE__KAFKA__SECURITY__PASSWORD_FILE": str(secret)})
    assert s.kafka.security.password == "0777"


@pytest.mark.parametrize(
    ("environ", "needles"),
    [
        ({"PLAYSCOPE__KAFKA__PARTITIONS": "twelve"}, ["kafka.partitions:", "(from PLAYSCOPE__KAFKA__PARTITIONS)"]),
        ({"PLAYSCOPE__KAFKA__PARTITIONS": "1e3"}, ["kafka.partitions:", "valid integer"]),
        ({"PLAYSCOPE__KAFKA__PARTITONS": "3"}, ["kafka.partitons: unknown key (from PLAYSCOPE__KAFKA__PARTITONS)"]),
        ({"PLAYSCOPE_WINDOW_S": "0"}, ["window_s:", "(from PLAYSCOPE_WINDOW_S)"]),
        ({"PLAYSCOPE__KAFKA__STATIC_MEMBERSHIP": "maybe"}, ["kafka.static_membership:", "valid boolean"]),
        ({"PLAYSCOPE__PRIVACY__SECRET": "123456"}, ["privacy.secret:", "at least 16", "PLAYSCOPE__PRIVACY__SECRET"]),
        ({"PLAYSCOPE__PRIVACY__HASH_FIELDS": "[profile_id"}, ["privacy.hash_fields:", "valid list"]),
        ({"PLAYSCOPE__PRIVACY__HASH_FIELDS": "[a, {b: c}]"}, ["privacy.hash_fields.1:",
                                                            "(from PLAYSCOPE__PRIVACY__HASH_FIELDS)"]),
    ],
)
def test_bad_values_name_the_key_and_the_variable(environ: dict[str, str], needles: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ=environ)
    for needle in needles:
        assert needle in str(info.value)
    assert str(info.value).startswith("configuration: ")


def test_bad_values_in_a_component_section_name_the_key_and_the_variable() -> None:
    s = load_settings(environ={"PLAYSCOPE__ALERTS__BATCH_SIZE": "lots", "PLAYSCOPE__ALERTS__METRICS_PORT": "null"})
    with pytest.raises(ConfigError) as info:
        s.section("alerts", AlertsConfig)
    lines = str(info.value).splitlines()
    assert any(line.startswith("configuration: alerts.batch_size: ")
               and line.endswith("(from PLAYSCOPE__ALERTS__BATCH_SIZE)") for line in lines)  # fmt: skip
    # "null" is text, not None: leave a variable unset to keep the default
    assert any(line.startswith("configuration: alerts.metrics_port: ")
               and "PLAYSCOPE__ALERTS__METRICS_PORT" in line for line in lines)  # fmt: skip
    # a copy (as the tests' per-test prefixes make) still knows where the values came from
    with pytest.raises(ConfigError, match="PLAYSCOPE__ALERTS__BATCH_SIZE"):
        s.model_copy(update={"topic_prefix": "t."}).section("alerts", AlertsConfig)


@pytest.mark.parametrize(
    ("key", "secret"),
    [("password", True), ("smtp_password", True), ("key_password", True), ("api_key", True),
     ("kibana_api_key", True), ("grafana_token", True), ("secret", True), ("privacy_secret", True),
     ("password_file", True), ("SMTP_PASSWORD", True), ("api_keys", False), ("keys_file", False),
     ("username", False), ("key_sha256", False), ("partitions", False)],
)  # fmt: skip
def test_secret_names(key: str, secret: bool) -> None:
    assert is_secret_name(key) is secret


def test_env_value_parses_only_flow_collections_of_non_secret_keys() -> None:
    assert env_value("hash_fields", "[a, 1, yes]") == ["a", "1", "yes"]
    assert env_value("cdn_hosts", " {a: 1} ") == {"a": "1"}
    assert env_value("password", "[a, 1]") == "[a, 1]"
    assert env_value("hash_fields", "[a, 1") == "[a, 1"
    assert env_value("port", "8080") == "8080"
    assert env_value("summary", "a: b # c") == "a: b # c"
