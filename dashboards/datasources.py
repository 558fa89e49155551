"""The Grafana data sources of the provisioning file, adapted to one deployment.

The provisioning file names the docker-compose hosts and unprefixed indices; a deployment with
an ``index_prefix`` (or Elasticsearch elsewhere) gets the same data sources with its own
indices and URLs, so the dashboards, which refer to data sources by uid only, work unchanged.
"""

from __future__ import annotations

import copy
from typing import Any

from dashboards.assets import grafana_datasources


def prefixed(patterns: str, index_prefix: str) -> str:
    """``"playscope-qoe-*,playscope-service-*"`` with ``index_prefix`` before each pattern."""
    return ",".join(f"{index_prefix}{p.strip()}" for p in patterns.split(",") if p.strip())


def es_indices(uid: str, index_prefix: str = "") -> str:
    """The index expression an Elasticsearch data source searches."""
    for ds in grafana_datasources():
        if ds["uid"] == uid and ds["type"] == "elasticsearch":
            return prefixed(ds["jsonData"]["index"], index_prefix)
    raise KeyError(f"no Elasticsearch data source with uid {uid!r} in the provisioning file")


def es_time_field(uid: str) -> str:
    for ds in grafana_datasources():
        if ds["uid"] == uid:
            return str(ds["jsonData"]["timeField"])
    raise KeyError(uid)


def for_deployment(index_prefix: str, elasticsearch_url: str, prometheus_url: str) -> list[dict[str, Any]]:
    """API payloads (``POST /api/datasources``) for this deployment."""
    out = []
    for ds in grafana_datasources():
        payload = copy.deepcopy(ds)
        payload.pop("editable", None)
        if ds["type"] == "elasticsearch":
            payload["url"] = elasticsearch_url
            payload["jsonData"]["index"] = prefixed(ds["jsonData"]["index"], index_prefix)
            payload["database"] = payload["jsonData"]["index"]
        elif ds["type"] == "prometheus":
            payload["url"] = prometheus_url
        out.append(payload)
    return out
