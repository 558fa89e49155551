"""A minimal ``_search`` client over HTTP, the same for Elasticsearch and OpenSearch.

The report sends plain searches without scripts (ratios are computed from the summed parts in
Python), so it runs on any cluster, including a bare server without a script language.
"""

from __future__ import annotations

from typing import Any

import httpx

from dashboards.errors import DashboardsError, Unreachable
from playscope.config import SearchConfig


class SearchClient:
    def __init__(self, cfg: SearchConfig) -> None:
        headers = {"Content-Type": "application/json"}
        auth: Any = None
        if cfg.api_key:
            headers["Authorization"] = f"ApiKey {cfg.api_key}"
        elif cfg.username:
            auth = (cfg.username, cfg.password or "")
        verify: Any = cfg.ca_file or cfg.verify_certs
        self.url = cfg.url.rstrip("/")
        self._http = httpx.Client(timeout=cfg.request_timeout_s, verify=verify, auth=auth, headers=headers)

    def search(self, index: str, body: dict[str, Any]) -> dict[str, Any]:
        params = {"ignore_unavailable": "true", "allow_no_indices": "true"}
        try:
            resp = self._http.post(f"{self.url}/{index}/_search", params=params, json=body)
        except httpx.TransportError as exc:
            raise Unreachable(f"search backend unreachable at {self.url}: {type(exc).__name__}: {exc}") from None
        if resp.status_code >= 400:
            raise DashboardsError(f"search on {index} at {self.url} failed: HTTP {resp.status_code}: "
                                  f"{resp.text[:300]}")
        return dict(resp.json())

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SearchClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
