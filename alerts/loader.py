"""Rules files: YAML with ``channels`` and ``rules``, validated once, errors naming file, rule and key.

``-r`` takes one file or a directory (every ``*.yaml`` / ``*.yml`` in it, sorted); channels
defined in any file of a directory can be used by the rules of every file. String values of
channels may read the environment as ``${VAR}`` or ``${VAR:-default}`` so secrets and URLs stay
out of the file.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from alerts.notifiers import NOTIFIERS, ChannelOptions
from alerts.rule_types import RULE_TYPES, Rule
from playscope.config import describe_validation_error
from playscope.errors import ConfigError


class RulesError(ConfigError):
    """A rules file is invalid; the message names file, rule (or channel) and key."""


@dataclass(frozen=True)
class Channel:
    name: str
    options: ChannelOptions
    source_file: str


@dataclass
class RuleSet:
    channels: dict[str, Channel] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)

    def rule(self, name: str) -> Rule:
        return next(r for r in self.rules if r.name == name)


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(value: Any, environ: dict[str, str] | os._Environ[str] = os.environ) -> Any:
    if isinstance(value, str):
        def sub(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in environ:
                return environ[name]
            if default is None:
                raise KeyError(name)
            return default

        return _ENV.sub(sub, value)
    if isinstance(value, dict):
        return {k: expand_env(v, environ) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, environ) for v in value]
    return value


def rule_files(path: str | Path) -> list[Path]:
    target = Path(path)
    if target.is_dir():
        files = sorted(p for p in target.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
        if not files:
            raise RulesError(f"{target}: no .yaml rules files in this directory")
        return files
    if not target.is_file():
        raise RulesError(f"{target}: no such rules file or directory")
    return [target]


def load_rules(path: str | Path, environ: dict[str, str] | None = None) -> RuleSet:
    """Load and validate every rules file under ``path``; raise RulesError on the first problems."""
    env = os.environ if environ is None else environ
    ruleset = RuleSet()
    errors: list[str] = []
    raw_rules: list[tuple[str, int, Any]] = []
    for file in rule_files(path):
        where = str(file)
        try:
            doc = yaml.safe_load(file.read_text()) or {}
        except yaml.YAMLError as exc:
            raise RulesError(f"{where}: not valid YAML: {exc}") from None
        if not isinstance(doc, dict):
            raise RulesError(f"{where}: top level must be a mapping with 'channels' and 'rules'")
        unknown = set(doc) - {"channels", "rules"}
        if unknown:
            names = ", ".join(sorted(str(key) for key in unknown))  # YAML keys may be numbers or null
            errors.append(f"{where}: {names}: unknown key (expected channels, rules)")
        channels = doc.get("channels") or {}
        if not isinstance(channels, dict):
            errors.append(f"{where}: channels: must be a mapping of name to channel")
            channels = {}
        for name, options in channels.items():
            errors += _load_channel(ruleset, where, str(name), options, env)
        rules = doc.get("rules") or []
        if not isinstance(rules, list):
            errors.append(f"{where}: rules: must be a list of rules")
            rules = []
        raw_rules += [(where, i, raw) for i, raw in enumerate(rules)]
    seen: set[str] = set()
    for where, index, raw in raw_rules:
        rule, problems = _load_rule(where, index, raw)
        errors += problems
        if rule is None:
            continue
        label = f"{where}: rule {rule.name!r}"
        if rule.name in seen:
            errors.append(f"{label}: name: another rule has this name")
        seen.add(rule.name)
        for channel in rule.notify:
            if channel not in ruleset.channels:
                known = ", ".join(sorted(ruleset.channels)) or "none defined"
                errors.append(f"{label}: notify: unknown channel {channel!r} (channels: {known})")
        if rule.enabled:
            ruleset.rules.append(rule)
    if errors:
        raise RulesError("\n".join(errors))
    return ruleset


def _load_channel(ruleset: RuleSet, where: str, name: str, options: Any,
                  env: dict[str, str] | os._Environ[str]) -> list[str]:  # fmt: skip
    label = f"{where}: channel {name!r}"
    if not isinstance(options, dict):
        return [f"{label}: must be a mapping with a 'type'"]
    kind = options.get("type")
    notifier = NOTIFIERS.get(str(kind))
    if notifier is None:
        return [f"{label}: type: {kind!r} is not a channel type (one of {', '.join(NOTIFIERS)})"]
    if name in ruleset.channels:
        return [f"{label}: also defined in {ruleset.channels[name].source_file}"]
    try:
        expanded = expand_env(options, env)
    except KeyError as exc:
        return [f"{label}: environment variable {exc.args[0]} is not set (use ${{VAR:-default}})"]
    try:
        ruleset.channels[name] = Channel(name, notifier.Options.model_validate(expanded), where)
    except ValidationError as exc:
        return describe_validation_error(exc, label)
    return []


def _load_rule(where: str, index: int, raw: Any) -> tuple[Rule | None, list[str]]:
    if not isinstance(raw, dict):
        return None, [f"{where}: rules[{index}]: must be a mapping"]
    label = f"{where}: rule {raw['name']!r}" if raw.get("name") else f"{where}: rules[{index}]"
    kind = raw.get("type", "threshold")
    model = RULE_TYPES.get(str(kind))
    if model is None:
        return None, [f"{label}: type: {kind!r} is not a rule type (one of {', '.join(RULE_TYPES)})"]
    try:
        return model.model_validate(raw), []
    except ValidationError as exc:
        return None, describe_validation_error(exc, label)
