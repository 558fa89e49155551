"""The price table: instance types, the gp3 rate and the instance each role runs on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from playscope.errors import ConfigError

DEFAULT = Path(__file__).with_name("prices.yaml")
ROLES = ("collector", "agent", "streams", "indexer", "broker", "search")


@dataclass(frozen=True)
class Instance:
    name: str
    vcpu: int
    gib: float
    usd_per_hour: float
    network_gbps: float


@dataclass(frozen=True)
class Prices:
    as_of: str
    source: str
    hours_per_month: float
    gp3_usd_per_gb_month: float
    roles: dict[str, Instance]
    max_disk_gib: dict[str, float]


def parse(tree: Any, origin: str) -> Prices:
    """A price table from its YAML tree; a missing or wrong key is a ConfigError naming it."""
    def need(node: Any, key: str, where: str) -> Any:
        if not isinstance(node, dict) or key not in node:
            raise ConfigError(f"{origin}: {where}{key}: missing")
        return node[key]

    instances: dict[str, Instance] = {}
    for name, spec in need(tree, "instances", "").items():
        try:
            instances[name] = Instance(name, int(need(spec, "vcpu", f"instances.{name}.")),
                                       float(need(spec, "gib", f"instances.{name}.")),
                                       float(need(spec, "usd_per_hour", f"instances.{name}.")),
                                       float(need(spec, "network_gbps", f"instances.{name}.")))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{origin}: instances.{name}: {exc}") from None
    roles: dict[str, Instance] = {}
    disks: dict[str, float] = {}
    for role in ROLES:
        spec = need(need(tree, "roles", ""), role, "roles.")
        kind = need(spec, "instance", f"roles.{role}.")
        if kind not in instances:
            raise ConfigError(f"{origin}: roles.{role}.instance: {kind!r} is not in instances")
        roles[role] = instances[kind]
        if role in ("broker", "search"):
            disks[role] = float(need(spec, "max_disk_gib", f"roles.{role}."))
    return Prices(as_of=str(need(tree, "as_of", "")), source=str(need(tree, "source", "")),
                  hours_per_month=float(tree.get("hours_per_month", 730)),
                  gp3_usd_per_gb_month=float(need(tree, "gp3_usd_per_gb_month", "")),
                  roles=roles, max_disk_gib=disks)


def load(path: Path | None = None) -> Prices:
    source = path or DEFAULT
    try:
        tree = yaml.safe_load(source.read_text())
    except FileNotFoundError:
        raise ConfigError(f"price table {source} does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not YAML: {exc}") from None
    return parse(tree, str(source))
