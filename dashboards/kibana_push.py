"""Import the Kibana saved objects through the saved-objects import API (``overwrite=true``).

Kibana answers HTTP 200 even when some objects failed; the per-object ``errors`` are read and
reported, as with Elasticsearch's bulk API.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx

from dashboards.assets import kibana_objects, to_ndjson
from dashboards.config import DashboardsConfig
from dashboards.errors import DashboardsError, Unreachable
from playscope.config import Settings
from playscope.logs import log_event

log = logging.getLogger("playscope.dashboards.kibana")


@dataclass
class KibanaResult:
    imported: int

    def describe(self, url: str) -> str:
        return f"kibana: {self.imported} saved objects imported at {url}"


def for_deployment(index_prefix: str) -> list[dict[str, Any]]:
    """The committed objects, with the deployment's index prefix in each data view's pattern."""
    objects = kibana_objects()
    if index_prefix:
        for obj in objects:
            if obj["type"] == "index-pattern":
                obj["attributes"]["title"] = f"{index_prefix}{obj['attributes']['title']}"
    return objects


def import_url(cfg: DashboardsConfig) -> str:
    base = cfg.kibana_url.rstrip("/")
    space = f"/s/{cfg.kibana_space}" if cfg.kibana_space else ""
    return f"{base}{space}/api/saved_objects/_import?overwrite=true"


def provision_kibana(settings: Settings, cfg: DashboardsConfig) -> KibanaResult:
    objects = for_deployment(settings.index_prefix)
    headers = {"kbn-xsrf": "playscope"}
    auth: Any = None
    if cfg.kibana_api_key:
        headers["Authorization"] = f"ApiKey {cfg.kibana_api_key}"
    elif cfg.kibana_username:
        auth = (cfg.kibana_username, cfg.kibana_password or "")
    files = {"file": ("playscope.ndjson", to_ndjson(objects).encode(), "application/ndjson")}
    try:
        with httpx.Client(timeout=cfg.timeout_s, verify=cfg.verify_certs, auth=auth) as client:
            resp = client.post(import_url(cfg), headers=headers, files=files)
    except httpx.TransportError as exc:
        raise Unreachable(f"Kibana is unreachable at {cfg.kibana_url}: {type(exc).__name__}: {exc}") from None
    if resp.status_code in (401, 403):
        raise DashboardsError(f"Kibana at {cfg.kibana_url} refused the credentials (HTTP {resp.status_code}); "
                              "set dashboards.kibana_api_key or kibana_username/kibana_password")
    if resp.status_code >= 400:
        raise DashboardsError(f"Kibana at {cfg.kibana_url} refused the import: HTTP {resp.status_code}: "
                              f"{resp.text[:300]}")
    try:
        answer = resp.json()
    except ValueError:
        raise DashboardsError(f"Kibana at {cfg.kibana_url} answered something that is not JSON: "
                              f"{resp.text[:200]!r}") from None
    errors = answer.get("errors") or []
    if not answer.get("success", False) or errors:
        listed = "; ".join(f"{e.get('type')} {e.get('id')}: {e.get('error', {}).get('type', e.get('error'))}"
                           for e in errors[:10])
        raise DashboardsError(f"Kibana at {cfg.kibana_url} imported {answer.get('successCount', 0)} of "
                              f"{len(objects)} objects; failed: {listed or answer}")
    count = int(answer.get("successCount", len(objects)))
    log_event(log, "dashboards.kibana_imported", objects=count)
    return KibanaResult(count)
