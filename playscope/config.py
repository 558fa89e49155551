"""Configuration: YAML plus environment overrides, validated once at start-up.

A deployment is described by one file (``playscope.yaml`` in the working directory, or
``--config``). Every key has a default in code, so an empty file (or none) gives a working
local setup. The environment variables of SPEC 1 override the file; any other key can be
overridden as ``PLAYSCOPE__SECTION__KEY=value``, the value typed by the key's model (see
:func:`env_value`): ``PLAYSCOPE__KAFKA__PARTITIONS=12`` is a number because ``partitions`` is an
int, ``PLAYSCOPE__KAFKA__SECURITY__PASSWORD=0777`` stays the text ``0777``.

Components own their sections: each defines a pydantic model and reads it with
:meth:`Settings.section`, so ``collectors/`` never needs to know the shape of ``alerts:``.
Errors name the file and the dotted key that is wrong.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from playscope.errors import ConfigError
from playscope.secrets import is_secret_key, resolve_secrets

DEFAULT_CONFIG_FILE = "playscope.yaml"

# SPEC 1: environment variable -> dotted config key
ENV_OVERRIDES: dict[str, str] = {
    "PLAYSCOPE_KAFKA": "kafka.bootstrap",
    "PLAYSCOPE_ES": "elasticsearch.url",
    "PLAYSCOPE_OPENSEARCH": "opensearch.url",
    "PLAYSCOPE_BACKEND": "backend",
    "PLAYSCOPE_COLLECTOR_PORT": "collector.port",
    "PLAYSCOPE_HOME": "home",
    "PLAYSCOPE_WINDOW_S": "window_s",
}


class Strict(BaseModel):
    """Base for config sections: unknown keys are errors, so typos do not pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class KafkaSecurity(Strict):
    """Client-side security, shared by every Kafka client of every component."""

    protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    username: str | None = None
    password: str | None = Field(default=None, repr=False)
    ca_file: str | None = None


class KafkaConfig(Strict):
    bootstrap: str = "localhost:9092"
    partitions: int = Field(default=6, ge=1, le=1024)
    replication_factor: int = Field(default=1, ge=1)
    # Topics get min.insync.replicas = this (capped like the replication factor when fewer brokers
    # are live); 1 leaves the broker default. With acks=all, 2 of 3 replicas keep writes going
    # while one broker is down. More than replication_factor would refuse every acks=all write.
    min_insync_replicas: int = Field(default=1, ge=1)
    # Static group membership (group.instance.id): a consumer restarted after a crash takes its
    # partitions back at once instead of waiting out the dead member's session.
    static_membership: bool = True
    instance_id: str | None = None  # explicit member id (e.g. a pod name); derived from host and a slot if unset
    session_timeout_s: float = Field(default=30.0, ge=6.0, le=300.0)
    security: KafkaSecurity = KafkaSecurity()

    @field_validator("min_insync_replicas")
    @classmethod
    def _isr_within_replication(cls, value: int, info: ValidationInfo) -> int:
        replication = info.data.get("replication_factor")
        if replication is not None and value > replication:
            raise ValueError(f"{value} is larger than kafka.replication_factor ({replication}): "
                             "every acks=all write would be refused")
        return value


class IndexSettings(Strict):
    """Shards and replicas of one index family's template. A key left unset keeps what the
    installed template has (an operator's change survives restarts); a template installed for the
    first time gets 1 shard and 0 replicas."""

    shards: int | None = Field(default=None, ge=1, le=1024)
    replicas: int | None = Field(default=None, ge=0, le=32)


class IndicesConfig(Strict):
    """``indices:``: template settings for every family (``all``) or one (its SPEC 10 name);
    a family's own key wins over ``all``."""

    all: IndexSettings = IndexSettings()
    playback: IndexSettings = IndexSettings()
    logs: IndexSettings = IndexSettings()
    sessions: IndexSettings = IndexSettings()
    qoe: IndexSettings = IndexSettings()
    service: IndexSettings = IndexSettings()
    alerts: IndexSettings = IndexSettings()
    deadletter: IndexSettings = IndexSettings()

    def for_family(self, name: str) -> IndexSettings:
        """What the configuration sets for family ``name`` (None: not set)."""
        own: IndexSettings = getattr(self, name)
        return IndexSettings(
            shards=own.shards if own.shards is not None else self.all.shards,
            replicas=own.replicas if own.replicas is not None else self.all.replicas,
        )


DEFAULT_IP_FIELDS = ("client_ip", "ip", "ip_address", "remote_addr", "remote_ip", "x_forwarded_for", "x_real_ip",
                     "client.address", "net.peer.ip", "net.sock.peer.addr", "network.peer.address",
                     "source.address", "http.client_ip")


class PrivacyConfig(Strict):
    """``privacy:`` (top level; ``collector.privacy`` is its older alias): the key of the hash
    that replaces viewer identifiers in the collector, the agent and the SDK (from the
    environment or a file: ``secret: ${PLAYSCOPE_PRIVACY_SECRET}`` or ``secret_file: PATH``).
    ``ip_fields`` are matched at any depth and in any spelling (``client_ip``, ``clientIp``,
    ``client.ip``); see playscope/privacy.py."""

    secret: str | None = Field(default=None, repr=False, min_length=16)
    hash_fields: list[str] = ["profile_id"]
    ip_fields: list[str] = list(DEFAULT_IP_FIELDS)


class SearchConfig(Strict):
    url: str
    username: str | None = None
    password: str | None = Field(default=None, repr=False)
    api_key: str | None = Field(default=None, repr=False)
    ca_file: str | None = None
    verify_certs: bool = True
    request_timeout_s: float = Field(default=30.0, gt=0)


class Settings(BaseModel):
    """The whole configuration. Core keys are typed here; component sections stay raw dicts
    until their component validates them with :meth:`section`."""

    model_config = ConfigDict(extra="allow", frozen=True)

    kafka: KafkaConfig = KafkaConfig()
    elasticsearch: SearchConfig = SearchConfig(url="http://localhost:9200")
    opensearch: SearchConfig = SearchConfig(url="http://localhost:9201")
    backend: Literal["elasticsearch", "opensearch"] = "elasticsearch"
    home: Path = Path(".playscope")
    window_s: int = Field(default=60, ge=1, le=86400)
    allowed_lateness_s: int = Field(default=10, ge=0, le=86400)
    retention_days: int = Field(default=30, ge=1)
    # SPEC 4 clock bounds against the moment a record reached playscope; raise them for backfills.
    max_ts_ahead_s: int = Field(default=300, ge=0)
    max_ts_age_s: int = Field(default=7 * 86400, ge=0)
    # Pseudonymisation of profile_id and client IPs, for every way in (playscope/privacy.py).
    privacy: PrivacyConfig = PrivacyConfig()
    # Shards and replicas of the index templates (SPEC 10), per family.
    indices: IndicesConfig = IndicesConfig()
    # Prefixes let several deployments (or tests) share one broker and one cluster.
    topic_prefix: str = ""
    index_prefix: str = ""
    source_file: str | None = None
    # dotted key -> the environment variable that set it, so an error can name both
    _env_sources: dict[str, str] = PrivateAttr(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _search_url_defaults(cls, data: Any) -> Any:
        """A section that sets only credentials (``PLAYSCOPE__ELASTICSEARCH__PASSWORD_FILE``)
        keeps the default URL."""
        if isinstance(data, dict):
            for name, url in (("elasticsearch", "http://localhost:9200"), ("opensearch", "http://localhost:9201")):
                section = data.get(name)
                if isinstance(section, dict) and "url" not in section:
                    data[name] = {"url": url, **section}
        return data

    def topic(self, name: str) -> str:
        """The actual name of SPEC 3 topic ``name`` in this deployment."""
        return f"{self.topic_prefix}{name}"

    def group(self, name: str) -> str:
        """A consumer group id, namespaced like the topics."""
        return f"{self.topic_prefix}playscope.{name}"

    def section(self, name: str, model: type[M]) -> M:
        """Validate the component section ``name`` with ``model`` (defaults when absent)."""
        raw = (self.model_extra or {}).get(name) or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{self._where()}: '{name}' must be a mapping, got {type(raw).__name__}")
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            lines = describe_validation_error(exc, self._where(), prefix=name, sources=self._env_sources)
            raise ConfigError("\n".join(lines)) from None

    def raw(self, name: str) -> dict[str, Any]:
        """A component section as written, unvalidated: for reading one key of another
        component's section (the demo needs the collector's port) without owning its model."""
        raw = (self.model_extra or {}).get(name) or {}
        return dict(raw) if isinstance(raw, dict) else {}

    def clock_bounds_ms(self) -> tuple[int, int]:
        """(ahead, behind) for :func:`playscope.events.check_clock`, in milliseconds."""
        return self.max_ts_ahead_s * 1000, self.max_ts_age_s * 1000

    @property
    def search(self) -> SearchConfig:
        """The search backend the indexer writes to."""
        return self.opensearch if self.backend == "opensearch" else self.elasticsearch

    def _where(self) -> str:
        return self.source_file or "configuration"


M = TypeVar("M", bound=BaseModel)


def describe_validation_error(
    exc: ValidationError, where: str, prefix: str = "", sources: Mapping[str, str] | None = None
) -> list[str]:
    """One line per problem in ``exc``: ``<where>: <dotted.key>: <message>``, the dotted key below ``prefix``
    (the section the model was validated for). The shared wording of every config and rules loader.
    ``sources`` maps dotted keys to the environment variables that set them: a problem at or below
    such a key names the variable too."""
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        if prefix:
            key = f"{prefix}.{key}" if key else prefix
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        msg = msg.removeprefix("Value error, ")
        var = _source_of(key, sources or {})
        if var:
            msg = f"{msg} (from {var})"
        lines.append(f"{where}: {key}: {msg}" if key else f"{where}: {msg}")
    return lines


def _source_of(key: str, sources: Mapping[str, str]) -> str | None:
    parts = key.split(".")
    for end in range(len(parts), 0, -1):
        var = sources.get(".".join(parts[:end]))
        if var:
            return var
    return None


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    node = tree
    parts = dotted.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def is_secret_name(key: str) -> bool:
    """``password``, ``kibana_password``, ``grafana_token``, ``api_key``, ``privacy_secret`` (and
    their ``_file`` forms): keys whose values are secrets, never parsed. The rule is the one
    that masks and reads secrets (:func:`playscope.secrets.is_secret_key`), except ``api_keys``:
    a list, which may be written ``[k1, k2]``."""
    stem = key.lower().removesuffix("_file")
    return stem != "api_keys" and is_secret_key(stem)


def env_value(key: str, raw: str) -> Any:
    """The value of an environment override of ``key``, left for the key's model to type.

    A scalar stays the string written, and pydantic turns it into what the field declares when
    the settings or the component's section are validated (lax mode): ``"12"`` becomes 12 for
    an int, ``"yes"`` True for a bool, ``"1e3"`` 1000.0 for a float, and ``"123456"``, ``"0777"``,
    ``"yes"`` or ``"null"`` stay exactly that for a str such as a password. Parsing the value as
    YAML instead typed it by its looks, before the field was known: a password of digits became
    an int and was refused, ``0777`` became 511, ``yes`` True and ``null`` None.

    Only a flow collection (``[a, b]``, ``{k: v}``) is parsed, as YAML whose scalars all stay
    strings (the BaseLoader), so list and mapping fields can be set and their items are typed by
    the model too. A secret key (:func:`is_secret_name`) is never parsed: ``[x]`` is its text. A
    value that is not valid YAML flow is taken as written. No value means None: to get a key's
    default, leave its variable unset.
    """
    text = raw.strip()
    if is_secret_name(key) or not (text.startswith("[") or text.startswith("{")):
        return raw
    try:
        parsed = yaml.load(text, Loader=yaml.BaseLoader)  # only str, list and dict
    except yaml.YAMLError:
        return raw
    return parsed if isinstance(parsed, (list, dict)) else raw


def apply_env(
    tree: dict[str, Any], environ: Mapping[str, str], sources: dict[str, str] | None = None
) -> dict[str, Any]:
    """Apply SPEC 1 overrides and ``PLAYSCOPE__A__B`` overrides onto ``tree`` (in place); record in
    ``sources`` which variable set each dotted key. Empty variables are ignored, as SPEC 1's always
    were."""
    found = sources if sources is not None else {}
    for var, dotted in ENV_OVERRIDES.items():
        if environ.get(var):
            _set_dotted(tree, dotted, environ[var])
            found[dotted] = var
    for var, raw in environ.items():
        if var.startswith("PLAYSCOPE__") and len(var) > len("PLAYSCOPE__") and raw:
            dotted = ".".join(p.lower() for p in var[len("PLAYSCOPE__"):].split("__"))
            _set_dotted(tree, dotted, env_value(dotted.rsplit(".", 1)[-1], raw))
            found[dotted] = var
    return tree


# The component sections a configuration may hold besides the core keys; each is validated by
# its component's own model (:meth:`Settings.section`). Anything else is a typo, refused at load.
COMPONENT_SECTIONS = frozenset({"collector", "agent", "streams", "indexer", "alerts", "dashboards"})


def _unknown_sections(settings: Settings, where: str, sources: Mapping[str, str]) -> list[str]:
    known = sorted({*Settings.model_fields} - {"source_file"} | COMPONENT_SECTIONS)
    lines = []
    for name in sorted(settings.model_extra or {}):
        if name in COMPONENT_SECTIONS:
            continue
        hint = difflib.get_close_matches(name, known, n=1)
        origin = next((var for key, var in sources.items() if key == name or key.startswith(f"{name}.")), None)
        lines.append(f"{where}: {name}: unknown section"
                     + (f" (set by {origin})" if origin else "")
                     + (f"; did you mean {hint[0]!r}?" if hint else f" (known: {', '.join(known)})"))
    return lines


def load_settings(path: str | Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Load and validate the configuration once; raise ConfigError naming the bad key."""
    env = os.environ if environ is None else environ
    source: str | None = None
    tree: dict[str, Any] = {}
    candidate = Path(path) if path else Path(DEFAULT_CONFIG_FILE)
    if path and not candidate.is_file():
        raise ConfigError(f"config file not found: {candidate}")
    if candidate.is_file():
        source = str(candidate)
        try:
            loaded = yaml.safe_load(candidate.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{candidate}: not valid YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{candidate}: top level must be a mapping")
        tree = loaded
    sources: dict[str, str] = {}
    apply_env(tree, env, sources)
    # ${VAR} and *_file secrets (playscope/secrets.py): secrets stay out of the file and the CLI.
    resolve_secrets(tree, env, source or "configuration")
    tree["source_file"] = source
    try:
        settings = Settings.model_validate(tree)
    except ValidationError as exc:
        lines = describe_validation_error(exc, source or "configuration", sources=sources)
        raise ConfigError("\n".join(lines)) from None
    unknown = _unknown_sections(settings, source or "configuration", sources)
    if unknown:
        raise ConfigError("\n".join(unknown))
    settings._env_sources = sources
    return settings
