"""Fuzzing the configuration loaders: ``load_settings`` with any YAML text and any environment,
and the alert rules loader with any YAML text. Either loads, or raises ConfigError (RulesError)
whose every line starts with the file and names the key at fault, never another exception
(bounded: 300 examples per test, no deadline; no servers)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from pydantic import BaseModel

from alerts.loader import load_rules
from playscope.config import ENV_OVERRIDES, Settings, apply_env, load_settings
from playscope.errors import ConfigError

FUZZ = hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A folder with what secret *_file keys may name: text, bytes that are not UTF-8, a folder."""
    home = Path(str(tmp_path_factory.mktemp("fuzz-config")))
    (home / "secret.txt").write_text("a-secret-of-32-characters-long!!\n")
    (home / "binary.bin").write_bytes(b"\xff\xfe\x00\x81")
    (home / "folder").mkdir()
    yield home


def _paths(files: Path) -> st.SearchStrategy[str]:
    return st.sampled_from([str(files / "secret.txt"), str(files / "binary.bin"), str(files / "folder"),
                            str(files / "missing"), "", "a\x00b", "relative/missing"])


odd_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(10 ** 20), 10 ** 20), st.floats(), st.text(max_size=20),
    st.sampled_from(["${PLAYSCOPE_FUZZ_VAR}", "${UNSET_FUZZ_VAR}", "${UNSET_FUZZ_VAR:-fallback}", "${", "$}{}",
                     "localhost:9092", "http://localhost:9200", "https://u:p@h:1", "PLAINTEXT", "SASL_SSL",
                     "SCRAM-SHA-512", "opensearch", "0x10", "1e3", "yes", "~", "2026-01-01"]),
)
# keys without line breaks, so each line of an error is one problem (a key is named as written)
names = st.text(st.characters(exclude_categories=["Cc", "Zl", "Zp", "Cs"]), max_size=8)
values = st.recursive(odd_scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(names, inner, max_size=3), max_leaves=8)


def _model_keys(model: type[BaseModel]) -> dict[str, Any]:
    """Each field of ``model`` -> the keys of its section when it is one, else None."""
    out: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        kind = info.annotation
        out[name] = _model_keys(kind) if isinstance(kind, type) and issubclass(kind, BaseModel) else None
    return out


SETTINGS_KEYS = _model_keys(Settings)


@st.composite
def config_trees(draw: st.DrawFn, files: Path) -> Any:
    """A configuration tree with the real sections and keys (and the secret *_file keys), each
    value odd now and then, plus unknown keys and sections of components."""
    def section(keys: dict[str, Any]) -> dict[str, Any]:
        tree: dict[str, Any] = {}
        fields = [*sorted(keys), "password_file", "secret_file", "api_key_file", "unknown_key"]
        for name in draw(st.lists(st.sampled_from(fields), max_size=5, unique=True)):
            sub = keys.get(name)
            if name.endswith("_file"):
                tree[name] = draw(_paths(files) | values)
            elif isinstance(sub, dict) and draw(st.booleans()):
                tree[name] = section(sub)
            else:
                tree[name] = draw(values)
        return tree

    tree = section({**SETTINGS_KEYS, "collector": {"port": None, "spool_dir": None}, "agent": {}})
    return tree if draw(st.integers(0, 9)) else draw(values)


@st.composite
def yaml_texts(draw: st.DrawFn, files: Path) -> str:
    """YAML of a configuration tree (sometimes cut short), YAML's own odd constructs, or any text."""
    text = yaml.safe_dump(draw(config_trees(files)), allow_unicode=draw(st.booleans()))
    choice = draw(st.integers(0, 9))
    if choice == 0:
        text = text[: draw(st.integers(0, len(text)))]
    elif choice == 1:
        text = draw(st.sampled_from([
            "a: &x [1]\nb: *x\n", "? [1, 2]\n: x\n", "1: one\n2: two\n", "null: x\n", "kafka: !!binary aGk=\n",
            "kafka: !!python/object:os.system {}\n", "kafka:\n  bootstrap: a\nkafka: b\n", "- a\n- b\n",
            "kafka: {partitions: 99999999999999999999999}\n", "window_s: .inf\n", "window_s: .nan\n",
            "home: !!timestamp 2001-12-14\n", "\ufeffkafka: {}\n", "kafka: {bootstrap: \"\\0\"}\n",
            "elasticsearch: {password_file: \"a\\0b\"}\n", "%YAML 1.1\n---\nkafka: {}\n", "a: b: c\n"]))
    elif choice == 2:
        text = draw(st.text(max_size=200))
    return text


def _env_names() -> st.SearchStrategy[str]:
    parts = st.sampled_from(["KAFKA", "BOOTSTRAP", "PARTITIONS", "SECURITY", "PASSWORD", "PASSWORD_FILE", "PRIVACY",
                             "SECRET", "SECRET_FILE", "ELASTICSEARCH", "URL", "WINDOW_S", "COLLECTOR", "PORT",
                             "HOME", "X", ""])
    return st.one_of(st.sampled_from(sorted(ENV_OVERRIDES)),
                     st.lists(parts, min_size=1, max_size=3).map(lambda p: "PLAYSCOPE__" + "__".join(p)))


def _environ(files: Path) -> st.SearchStrategy[dict[str, str]]:
    env_values = st.one_of(st.text(max_size=20), _paths(files), st.sampled_from(
        ["123456", "0123", "yes", "[1, 2]", "{a: 1}", "- x", "!!binary aGk=", "'", "99999999999999999999", ""]))
    return st.dictionaries(_env_names() | st.just("PLAYSCOPE_FUZZ_VAR"), env_values, max_size=4)


def _dotted_keys(tree: Any, prefix: str = "") -> set[str]:
    """Every dotted key of ``tree``, list items by index as pydantic (``a.0``) and the secrets
    resolver (``a[0]``) name them."""
    keys: set[str] = set()
    if isinstance(tree, dict):
        for key, value in tree.items():
            dotted = f"{prefix}.{key}" if prefix else str(key)
            keys |= {dotted, dotted.removesuffix("_file")} | _dotted_keys(value, dotted)  # password_file -> password
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            for dotted in (f"{prefix}.{index}", f"{prefix}[{index}]"):
                keys |= {dotted} | _dotted_keys(value, dotted)
    return keys


def _model_dotted(keys: dict[str, Any], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for name, sub in keys.items():
        dotted = f"{prefix}.{name}" if prefix else name
        out |= {dotted} | (_model_dotted(sub, dotted) if sub else set())
    return out


MODEL_KEYS = _model_dotted(SETTINGS_KEYS)


def _check_names_a_key(message: str, where: str, tree: Any) -> None:
    """Each line: ``<file>: <dotted key>: <problem>``, the key one written (in the file or the
    environment) or one the model has, or a whole-file problem (YAML syntax, top level)."""
    if message.startswith((f"{where}: not valid YAML: ", f"{where}: top level must be a mapping")):
        return  # the YAML parser's own lines follow, with the line and column
    known = _dotted_keys(tree) | MODEL_KEYS
    for line in message.split("\n"):
        assert line.startswith(f"{where}: "), f"the error does not start with the file: {line!r}"
        rest = line[len(where) + 2:]
        assert any(rest.startswith(f"{key}: ") for key in known), f"the error names no key: {line!r}"


@FUZZ
@given(data=st.data())
def test_load_settings_loads_or_raises_config_error_naming_the_key(files: Path, data: st.DataObject) -> None:
    text = data.draw(yaml_texts(files))
    environ = data.draw(_environ(files))
    path = files / "playscope.yaml"
    path.write_text(text, errors="surrogateescape")
    try:
        settings = load_settings(path, environ=environ)
    except ConfigError as exc:
        try:
            tree = yaml.safe_load(text)
        except yaml.YAMLError:
            tree = None
        tree = apply_env(tree if isinstance(tree, dict) else {}, environ)
        _check_names_a_key(str(exc), str(path), tree)
        return
    assert isinstance(settings, Settings) and settings.source_file == str(path)


rule_values = st.one_of(odd_scalars, st.sampled_from(["qoe", "service", "rebuffer_ratio", "failure_rate",
                                                      "error_rate", ">", "<=", "cdn", "15m", "1h30m", "-1s",
                                                      "{cdn} {value}", "{nope}", "}{", "oncall", "absent"]))
rule_keys = ["name", "type", "source", "metric", "op", "threshold", "group_by", "where", "for", "min_volume",
             "volume_metric", "severity", "notify", "summary", "repeat_interval", "labels", "enabled", "extra"]
channel_keys = ["type", "url", "secret", "headers", "to", "from", "port", "host", "channel", "ttl", "labels"]


GOOD_RULE = {"name": "cdn-rebuffer", "source": "qoe", "metric": "rebuffer_ratio", "op": ">", "threshold": 0.05,
             "group_by": ["cdn"], "for": 2, "notify": ["oncall"], "summary": "{cdn}: {value}"}
GOOD_CHANNEL = {"type": "webhook", "url": "${PLAYSCOPE_FUZZ_VAR}"}


@st.composite
def _shaped(draw: st.DrawFn, good: dict[str, Any], keys: list[str], odd: st.SearchStrategy[Any]) -> dict[str, Any]:
    """``good`` with up to two keys set to odd values or dropped."""
    out = dict(good)
    for key in draw(st.lists(st.sampled_from(keys), max_size=2, unique=True)):
        if draw(st.integers(0, 3)) == 0:
            out.pop(key, None)
        else:
            out[key] = draw(odd)
    return out


@st.composite
def rules_docs(draw: st.DrawFn) -> Any:
    """A rules file's tree: channels and rules that load, with keys made odd or unknown."""
    listish = st.lists(rule_values, max_size=3)
    odd = rule_values | listish | st.dictionaries(names, rule_values | listish, max_size=2)
    channel_odd = st.one_of(rule_values, listish, st.sampled_from(
        ["webhook", "slack", "email", "alertmanager", "pager", "http://h/x", "${UNSET_FUZZ_VAR}",
         "${PLAYSCOPE_FUZZ_VAR:-http://d/}"]))
    doc: dict[Any, Any] = {}
    if draw(st.integers(0, 3)):
        doc["channels"] = {"oncall": draw(_shaped(GOOD_CHANNEL, channel_keys, channel_odd))}
        if draw(st.integers(0, 3)) == 0:
            doc["channels"].update(draw(st.dictionaries(names | st.integers(), values, max_size=2)))
    if draw(st.integers(0, 3)):
        rules = draw(st.lists(_shaped(GOOD_RULE, rule_keys, odd), min_size=1, max_size=3))
        doc["rules"] = [{**rule, "name": f"{rule['name']}-{i}"} if isinstance(rule.get("name"), str) else rule
                        for i, rule in enumerate(rules)]
        if draw(st.integers(0, 3)) == 0:
            doc["rules"].append(draw(values))
    if draw(st.integers(0, 4)) == 0:
        doc.update(draw(st.dictionaries(names | st.integers() | st.booleans(), values, max_size=2)))
    return doc if draw(st.integers(0, 9)) else draw(values)


_RULES_LINE = re.compile(r"^(not valid YAML|top level must be a mapping|rule |rules\[\d+\]: |rules: |channel |"
                         r"channels: |no \.yaml|.*: unknown key \(expected channels, rules\)$)")


@FUZZ
@given(data=st.data())
def test_load_rules_loads_or_raises_rules_error_naming_the_key(files: Path, data: st.DataObject) -> None:
    choice = data.draw(st.integers(0, 9))
    if choice == 0:
        text = data.draw(st.text(max_size=200))
    else:
        text = yaml.safe_dump(data.draw(rules_docs()), allow_unicode=True)
        if choice == 1:
            text = text[: data.draw(st.integers(0, len(text)))]
    path = files / "rules.yaml"
    path.write_text(text, errors="surrogateescape")
    try:
        load_rules(path, environ={"PLAYSCOPE_FUZZ_VAR": "http://127.0.0.1:9/hook"})
    except ConfigError as exc:
        if str(exc).startswith(f"{path}: not valid YAML: "):
            return  # the YAML parser's own lines follow, with the line and column
        for line in str(exc).split("\n"):
            assert line.startswith(f"{path}: "), f"the error does not start with the file: {line!r}"
            assert _RULES_LINE.match(line[len(str(path)) + 2:]), f"the error names no rule, channel or key: {line!r}"
