"""Monthly cost of a sizing from the price table: instances per role and gp3 data disks.

The range runs from the sizing as computed to the same with one spare instance per role
(N+1: a node lost in a zone outage or an upgrade does not cut capacity below the sizing).
"""

from __future__ import annotations

from typing import Any

from playscope.capacity import model
from playscope.capacity.model import GIB, Policy
from playscope.capacity.prices import Prices


def role_instances(sizing: dict[str, Any], prices: Prices, policy: Policy) -> dict[str, float]:
    """Instances per role; the agent's is a fraction (it shares the service hosts)."""
    out: dict[str, float] = {}
    for comp in sizing["components"]:
        kind = prices.roles[comp["name"]]
        if comp["name"] == "agent":
            out["agent"] = comp["cores"] / kind.vcpu
        else:
            out[comp["name"]] = model.instances(comp["cores"], comp["memory_gib"], kind.vcpu, kind.gib,
                                                policy.memory_fill)
    out["broker"] = sizing["kafka"]["brokers"]
    out["search"] = sizing["search"]["nodes"]
    return out


def disk_gib(sizing: dict[str, Any], policy: Policy) -> float:
    """gp3 provisioned for Kafka and the search indices, filled to ``disk_fill``."""
    return (sizing["kafka"]["disk_bytes"] + sizing["search"]["disk_bytes"]) / GIB / policy.disk_fill


def monthly(sizing: dict[str, Any], prices: Prices, policy: Policy, regions: int) -> dict[str, Any]:
    counts = role_instances(sizing, prices, policy)
    hours = prices.hours_per_month
    by_role = {role: n * prices.roles[role].usd_per_hour * hours for role, n in counts.items()}
    disk = disk_gib(sizing, policy) * prices.gp3_usd_per_gb_month
    spare = sum(prices.roles[role].usd_per_hour * hours for role, n in counts.items() if role != "agent" and n)
    low = (sum(by_role.values()) + disk) * regions
    return {"instances_per_region": counts,
            "instance_types": {role: prices.roles[role].name for role in counts},
            "usd_by_role_per_region": by_role, "disk_gib_per_region": disk_gib(sizing, policy),
            "disk_usd_per_region": disk, "low_usd": low, "high_usd": low + spare * regions,
            "prices_as_of": prices.as_of, "prices_source": prices.source}


def hourly(sizing: dict[str, Any], prices: Prices, policy: Policy) -> float:
    """Instance $ per hour of a sizing (one region), for what a surge costs while it lasts."""
    return sum(n * prices.roles[role].usd_per_hour for role, n in role_instances(sizing, prices, policy).items())
