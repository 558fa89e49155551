"""Template installs merge into what is there: an operator's change to an installed template
survives an indexer start, the configuration's shards and replicas win, new mapping fields arrive.

The merge rule itself (playscope.indices.merge_template) is checked without servers first; the
rest runs a real indexer against the local Elasticsearch and OpenSearch."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest

from playscope import topics
from playscope.config import IndicesConfig, Settings
from playscope.indices import FAMILIES, merge_template
from playscope.provision import installed_template

from .helpers import config, count, produce, running_indexer, wait_for

LOGS = FAMILIES["logs"]
NOW = int(time.time() * 1000) // 1000 * 1000
BACKENDS = ["elasticsearch", "opensearch"]


def _stored(template: dict[str, Any]) -> dict[str, Any]:
    """``template`` as a cluster answers it back: nested ``index`` settings as strings, dates added."""
    stored = copy.deepcopy(template)
    settings = stored["template"]["settings"]
    stored["template"]["settings"] = {"index": {k: str(v) for k, v in settings.items()}}
    return {**stored, "composed_of": [], "created_date_millis": 1, "modified_date_millis": 2}


def test_a_first_install_is_playscopes_template() -> None:
    wanted = LOGS.template("p-")
    assert merge_template(None, wanted) is wanted


def test_installed_settings_stay_unless_the_configuration_sets_them() -> None:
    stored = _stored(LOGS.template("p-", replicas=2))
    stored["template"]["settings"]["index"]["max_result_window"] = "20000"
    merged = merge_template(stored, LOGS.template("p-"))
    assert merged["template"]["settings"] == {"number_of_shards": "1", "number_of_replicas": "2",
                                              "refresh_interval": "1s", "max_result_window": "20000"}
    assert "created_date_millis" not in merged and "modified_date_millis" not in merged
    assert merged["composed_of"] == []
    explicit = merge_template(stored, LOGS.template("p-", replicas=1), frozenset({"number_of_replicas"}))
    assert explicit["template"]["settings"]["number_of_replicas"] == 1
    assert explicit["template"]["settings"]["number_of_shards"] == "1"


def test_mappings_are_merged_playscope_owning_its_fields() -> None:
    stored = _stored(LOGS.template("p-"))
    props = stored["template"]["mappings"]["properties"]
    del props["trace_id"]  # a template from before the field existed
    props["team"] = {"type": "keyword"}  # an operator's field
    props["status"] = {"type": "long"}  # playscope maps it as short
    stored["template"]["aliases"] = {"logs": {}}
    stored["index_patterns"] = ["elsewhere-*"]
    merged = merge_template(stored, LOGS.template("p-"))
    props = merged["template"]["mappings"]["properties"]
    assert props["trace_id"] == LOGS.properties["trace_id"]
    assert props["team"] == {"type": "keyword"}
    assert props["status"] == {"type": "short"}
    assert merged["template"]["mappings"]["dynamic"] is False
    assert merged["template"]["aliases"] == {"logs": {}}
    assert merged["index_patterns"] == ["p-playscope-logs-*"]


@pytest.fixture(params=BACKENDS)
def target(request: pytest.FixtureRequest, settings: Settings, es: Any, opensearch: Any
           ) -> tuple[Settings, Any]:
    name = request.param
    return settings.model_copy(update={"backend": name}), (es if name == "elasticsearch" else opensearch)


def _operator_edits(client: Any, settings: Settings, edit: Any) -> None:
    """Change the installed logs template the way an operator would: read it, edit it, put it back."""
    name = LOGS.template_name(settings.index_prefix)
    body = installed_template(client, name)
    assert body is not None
    for key in ("created_date_millis", "modified_date_millis"):
        body.pop(key, None)
    edit(body)
    client.indices.put_index_template(name=name, body=body)


def _start_indexer(settings: Settings, client: Any) -> str:
    """Run an indexer until one log line is stored (its templates were installed at start);
    return the daily index it created."""
    pattern = f"{settings.index_prefix}{LOGS.pattern}"
    produce(settings, topics.SERVICE_LOGS, [{"ts": NOW, "service": "api", "message": "GET /x", "level": "INFO"}])
    with running_indexer(settings, config(families=("logs",))):
        wait_for(lambda: count(client, pattern) == 1, 60, "the log line indexed")
    return LOGS.index_for({"ts": NOW}, settings.index_prefix)


def _replicas(body: dict[str, Any] | None) -> str:
    assert body is not None
    return str(body["template"]["settings"]["index"]["number_of_replicas"])


def _index_replicas(client: Any, index: str) -> str:
    resp = client.indices.get_settings(index=index)
    return str(getattr(resp, "body", resp)[index]["settings"]["index"]["number_of_replicas"])


def test_an_operators_replicas_survive_an_indexer_start(target: tuple[Settings, Any]) -> None:
    settings, client = target
    name = LOGS.template_name(settings.index_prefix)
    assert _replicas(installed_template(client, name)) == "0"  # playscope's default, as provisioned
    _operator_edits(client, settings, lambda b: b["template"]["settings"]["index"].update(number_of_replicas="2"))
    index = _start_indexer(settings, client)
    assert _replicas(installed_template(client, name)) == "2"
    assert _index_replicas(client, index) == "2"  # the day's index was made from the operator's template


def test_configured_replicas_are_applied(target: tuple[Settings, Any]) -> None:
    settings, client = target
    settings = settings.model_copy(update={"indices": IndicesConfig.model_validate({"logs": {"replicas": 1}})})
    _operator_edits(client, settings, lambda b: b["template"]["settings"]["index"].update(number_of_replicas="2"))
    index = _start_indexer(settings, client)
    assert _replicas(installed_template(client, LOGS.template_name(settings.index_prefix))) == "1"
    assert _index_replicas(client, index) == "1"
    other = installed_template(client, FAMILIES["playback"].template_name(settings.index_prefix))
    assert _replicas(other) == "0"  # only the logs family was configured


def test_a_new_mapping_field_arrives_and_an_operators_field_stays(target: tuple[Settings, Any]) -> None:
    settings, client = target

    def older_template_with_an_operator_field(body: dict[str, Any]) -> None:
        props = body["template"]["mappings"]["properties"]
        del props["trace_id"]
        props["team"] = {"type": "keyword"}

    _operator_edits(client, settings, older_template_with_an_operator_field)
    props = installed_template(client, LOGS.template_name(settings.index_prefix))["template"]["mappings"]["properties"]  # type: ignore[index]
    assert "trace_id" not in props
    index = _start_indexer(settings, client)
    props = installed_template(client, LOGS.template_name(settings.index_prefix))["template"]["mappings"]["properties"]  # type: ignore[index]
    assert props["trace_id"]["type"] == "keyword" and props["team"] == {"type": "keyword"}
    resp = client.indices.get_mapping(index=index)
    mapped = getattr(resp, "body", resp)[index]["mappings"]["properties"]
    assert mapped["trace_id"]["type"] == "keyword" and mapped["team"]["type"] == "keyword"
