"""Push the data sources and dashboards to Grafana over its HTTP API (grafana-client).

Idempotent: data sources are updated by uid when they exist and created otherwise, the folder
is created once, dashboards are saved with ``overwrite`` so a re-run replaces them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

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


def _client(cfg: DashboardsConfig) -> Any:
    from grafana_client import GrafanaApi

    credential: Any = cfg.grafana_token
    if credential is None and cfg.grafana_username:
        credential = (cfg.grafana_username, cfg.grafana_password or "")
    url = cfg.grafana_url if cfg.verify_certs else f"{cfg.grafana_url}?verify=false"
    return GrafanaApi.from_url(url, credential=credential, timeout=cfg.timeout_s)


def _call(cfg: DashboardsConfig, what: str, fn: Any, *args: Any) -> Any:
    """Run one API call, turning grafana-client's exceptions into messages that say what failed."""
    import niquests
    from grafana_client.client import GrafanaClientError, GrafanaException, GrafanaTimeoutError

    try:
        return fn(*args)
    except (niquests.exceptions.ConnectionError, GrafanaTimeoutError) as exc:
        raise Unreachable(f"Grafana is unreachable at {cfg.grafana_url} ({what}): {exc}") from None
    except GrafanaClientError as exc:
        if exc.status_code in (401, 403):
            raise DashboardsError(
                f"Grafana at {cfg.grafana_url} refused the credentials ({what}: HTTP {exc.status_code}); "
                "set dashboards.grafana_token to a service-account token with the Editor or Admin role"
            ) from None
        raise
    except GrafanaException as exc:
        if exc.status_code == 0:
            raise Unreachable(f"Grafana is unreachable at {cfg.grafana_url} ({what}): {exc}") from None
        raise DashboardsError(f"Grafana at {cfg.grafana_url} failed on {what}: {exc}") from None


def _missing(cfg: DashboardsConfig, what: str, fn: Any, *args: Any) -> bool:
    """True when the object does not exist (HTTP 404)."""
    from grafana_client.client import GrafanaClientError

    try:
        _call(cfg, what, fn, *args)
        return False
    except GrafanaClientError as exc:
        if exc.status_code == 404:
            return True
        raise DashboardsError(f"Grafana at {cfg.grafana_url} failed on {what}: {exc}") from None


def provision_grafana(settings: Settings, cfg: DashboardsConfig) -> GrafanaResult:
    api = _client(cfg)
    result = GrafanaResult()
    _call(cfg, "health check", api.health.check)
    if cfg.grafana_datasources:
        es_url = cfg.grafana_elasticsearch_url or settings.search.url
        for ds in for_deployment(settings.index_prefix, es_url, cfg.prometheus_url):
            uid = ds["uid"]
            if _missing(cfg, f"data source {uid}", api.datasource.get_datasource_by_uid, uid):
                _call(cfg, f"create data source {uid}", api.datasource.create_datasource, ds)
                result.datasources_created.append(uid)
            else:
                _call(cfg, f"update data source {uid}", api.datasource.update_datasource_by_uid, uid, ds)
                result.datasources_updated.append(uid)
    if _missing(cfg, f"folder {cfg.grafana_folder_uid}", api.folder.get_folder, cfg.grafana_folder_uid):
        _call(cfg, "create folder", api.folder.create_folder, cfg.grafana_folder, cfg.grafana_folder_uid)
    for name, board in grafana_dashboards().items():
        payload = {"dashboard": board, "folderUid": cfg.grafana_folder_uid, "overwrite": True,
                   "message": "playscope dashboards provision"}
        answer = _call(cfg, f"save dashboard {name}", api.dashboard.update_dashboard, payload)
        if isinstance(answer, dict) and answer.get("status") not in (None, "success"):
            raise DashboardsError(f"Grafana at {cfg.grafana_url} did not save {name}: {answer}")
        result.dashboards.append(board["uid"])
        log_event(log, "dashboards.grafana_saved", uid=board["uid"], file=name)
    return result
