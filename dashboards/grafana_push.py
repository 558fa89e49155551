"""Push the data sources and dashboards to Grafana over its HTTP API (httpx).

Idempotent: data sources are updated by uid when they exist and created otherwise, the folder
is created once, dashboards are saved with ``overwrite`` so a re-run replaces them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from dashboards.assets import grafana_dashboards
from dashboards.config import DashboardsConfig
from dashboards.datasources import for_deployment
from dashboards.errors import DashboardsError, Unreachable
from playscope.config import Settings
from playscope.logs import log_event

log = logging.getLogger("playscope.dashboards.grafana")


@dataclass
class GrafanaResult:
    datasources_created: list[str] = field(default_factory=list)
    datasources_updated: list[str] = field(default_factory=list)
    dashboards: list[str] = field(default_factory=list)

    def describe(self, url: str, folder: str) -> str:
        return (f"grafana: {len(self.dashboards)} dashboards into folder {folder!r}, data sources "
                f"{len(self.datasources_created)} created / {len(self.datasources_updated)} updated, at {url}")


class GrafanaHttp:
    """The seven Grafana HTTP API calls provisioning makes, over httpx (the client the project
    already uses): no SDK that replaces ``urllib3`` under the search clients (grafana-client
    pulls in urllib3-future, which does)."""

    def __init__(self, cfg: DashboardsConfig) -> None:
        self.cfg = cfg
        auth: Any = None
        headers = {"Accept": "application/json"}
        if cfg.grafana_token:
            headers["Authorization"] = f"Bearer {cfg.grafana_token}"
        elif cfg.grafana_username:
            auth = (cfg.grafana_username, cfg.grafana_password or "")
        self._http = httpx.Client(base_url=cfg.grafana_url.rstrip("/"), headers=headers, auth=auth,
                                  timeout=cfg.timeout_s, verify=cfg.verify_certs)

    def __enter__(self) -> GrafanaHttp:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._http.close()

    def call(self, what: str, method: str, path: str, body: Any = None, missing_ok: bool = False) -> Any:
        """One API call; None for a 404 when ``missing_ok``; errors that say what failed."""
        url = self.cfg.grafana_url
        try:
            response = self._http.request(method, path, json=body)
        except httpx.TransportError as exc:
            raise Unreachable(f"Grafana is unreachable at {url} ({what}): {exc}") from None
        if response.status_code == 404 and missing_ok:
            return None
        if response.status_code in (401, 403):
            raise DashboardsError(
                f"Grafana at {url} refused the credentials ({what}: HTTP {response.status_code}); "
                "set dashboards.grafana_token to a service-account token with the Editor or Admin role")
        if response.status_code >= 400:
            raise DashboardsError(f"Grafana at {url} failed on {what}: HTTP {response.status_code} "
                                  f"{response.text[:300]}")
        try:
            return response.json()
        except ValueError:
            return None


def provision_grafana(settings: Settings, cfg: DashboardsConfig) -> GrafanaResult:
    result = GrafanaResult()
    with GrafanaHttp(cfg) as api:
        api.call("health check", "GET", "/api/health")
        if cfg.grafana_datasources:
            es_url = cfg.grafana_elasticsearch_url or settings.search.url
            for ds in for_deployment(settings.index_prefix, es_url, cfg.prometheus_url):
                uid = ds["uid"]
                path = f"/api/datasources/uid/{quote(uid, safe='')}"
                if api.call(f"data source {uid}", "GET", path, missing_ok=True) is None:
                    api.call(f"create data source {uid}", "POST", "/api/datasources", ds)
                    result.datasources_created.append(uid)
                else:
                    api.call(f"update data source {uid}", "PUT", path, ds)
                    result.datasources_updated.append(uid)
        folder = cfg.grafana_folder_uid
        if api.call(f"folder {folder}", "GET", f"/api/folders/{quote(folder, safe='')}", missing_ok=True) is None:
            api.call("create folder", "POST", "/api/folders", {"title": cfg.grafana_folder, "uid": folder})
        for name, board in grafana_dashboards().items():
            payload = {"dashboard": board, "folderUid": folder, "overwrite": True,
                       "message": "playscope dashboards provision"}
            answer = api.call(f"save dashboard {name}", "POST", "/api/dashboards/db", payload)
            if isinstance(answer, dict) and answer.get("status") not in (None, "success"):
                raise DashboardsError(f"Grafana at {cfg.grafana_url} did not save {name}: {answer}")
            result.dashboards.append(board["uid"])
            log_event(log, "dashboards.grafana_saved", uid=board["uid"], file=name)
    return result
