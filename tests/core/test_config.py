"""Configuration: defaults, file, SPEC 1 environment overrides, errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError, model_validator

from playscope.config import Strict, describe_validation_error, load_settings
from playscope.errors import ConfigError


def test_defaults_match_spec_1() -> None:
    s = load_settings(environ={})
    assert s.kafka.bootstrap == "localhost:9092"
    assert s.elasticsearch.url == "http://localhost:9200"
    assert s.opensearch.url == "http://localhost:9201"
    assert s.backend == "elasticsearch"
    assert s.window_s == 60
    assert s.allowed_lateness_s == 10
    assert s.home == Path(".playscope")


def test_environment_overrides() -> None:
    env = {"PLAYSCOPE_KAFKA": "k:1", "PLAYSCOPE_ES": "http://es:1", "PLAYSCOPE_BACKEND": "opensearch",
           "PLAYSCOPE_WINDOW_S": "5", "PLAYSCOPE_HOME": "/tmp/x", "PLAYSCOPE__KAFKA__PARTITIONS": "12"}
    s = load_settings(environ=env)
    assert (s.kafka.bootstrap, s.elasticsearch.url, s.backend, s.window_s) == ("k:1", "http://es:1",
                                                                              "opensearch", 5)
    assert s.kafka.partitions == 12
    assert s.search is s.opensearch


def test_file_then_env(tmp_path: Path) -> None:
    cfg = tmp_path / "p.yaml"
    cfg.write_text("window_s: 30\nkafka: {bootstrap: 'a:1'}\n")
    s = load_settings(cfg, environ={"PLAYSCOPE_KAFKA": "b:2"})
    assert s.window_s == 30
    assert s.kafka.bootstrap == "b:2"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("window_s: -3\n", "window_s"),
        ("kafka: {bootstrap: 'a', partitons: 3}\n", "kafka.partitons: unknown key"),
        ("backend: solr\n", "backend"),
        ("- a list\n", "top level must be a mapping"),
        ("kafka: [\n", "not valid YAML"),
    ],
)
def test_errors_name_file_and_key(tmp_path: Path, text: str, needle: str) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, environ={})
    assert needle in str(info.value)
    assert "bad.yaml" in str(info.value) or "YAML" in str(info.value)


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.yaml", environ={})


class Widget(Strict):
    size: int = 3


def test_component_sections_validate_with_their_model(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("dashboards: {size: big}\n")
    s = load_settings(cfg, environ={})
    with pytest.raises(ConfigError, match=r"dashboards\.size"):
        s.section("dashboards", Widget)
    assert load_settings(environ={}).section("dashboards", Widget).size == 3
    assert isinstance(Widget(), BaseModel)


def test_prefixes_namespace_topics_and_groups() -> None:
    s = load_settings(environ={}).model_copy(update={"topic_prefix": "t1."})
    assert s.topic("playscope.qoe.metrics") == "t1.playscope.qoe.metrics"
    assert s.group("indexer") == "t1.playscope.indexer"


class Pair(Strict):
    low: int = 0
    high: int = 1

    @model_validator(mode="after")
    def _ordered(self) -> Pair:
        if self.low > self.high:
            raise ValueError("low must not exceed high")
        return self


def test_validation_errors_are_described_one_line_each() -> None:
    with pytest.raises(ValidationError) as bad_keys:
        Pair.model_validate({"low": "x", "typo": 1})
    assert describe_validation_error(bad_keys.value, "c.yaml", prefix="pair") == [
        "c.yaml: pair.low: Input should be a valid integer, unable to parse string as an integer",
        "c.yaml: pair.typo: unknown key"]
    with pytest.raises(ValidationError) as unordered:
        Pair.model_validate({"low": 2})
    assert describe_validation_error(unordered.value, "c.yaml") == ["c.yaml: low must not exceed high"]
    assert describe_validation_error(unordered.value, "c.yaml", prefix="pair") == [
        "c.yaml: pair: low must not exceed high"]


def test_an_unknown_section_is_refused_with_the_nearest_name(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("kafak: {bootstrap: 'b:9092'}\n")
    with pytest.raises(ConfigError, match=rf"{cfg}: kafak: unknown section; did you mean 'kafka'"):
        load_settings(cfg, environ={})
    with pytest.raises(ConfigError, match=r"colector: unknown section \(set by PLAYSCOPE__COLECTOR__PORT\); did you "
                                          r"mean 'collector'"):
        load_settings(environ={"PLAYSCOPE__COLECTOR__PORT": "8081"})
    for name in ("collector", "agent", "streams", "indexer", "alerts", "dashboards"):
        assert load_settings(environ={f"PLAYSCOPE__{name.upper()}__X": "1"}).raw(name) == {"x": "1"}
