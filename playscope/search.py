"""Elasticsearch and OpenSearch clients built from one ``SearchConfig`` (HTTPS, auth, CA).

Every component (indexer, alert dry run, stack provisioning, dashboards) builds its search
client here, so TLS verification and credentials are configured the same way everywhere:

* ``url: https://...`` with ``ca_file`` (the cluster's CA; system CAs without it),
  ``verify_certs: false`` only for throw-away test clusters;
* ``username`` + ``password`` (basic auth), or ``api_key`` (Elasticsearch API key, the base64
  ``id:key`` form; sent as ``Authorization: ApiKey ...`` to OpenSearch or a proxy).
"""

from __future__ import annotations

from typing import Any, Literal

from playscope.config import SearchConfig

Flavour = Literal["elasticsearch", "opensearch"]


def client_kwargs(cfg: SearchConfig, flavour: Flavour) -> dict[str, Any]:
    """Keyword arguments for the flavour's client constructor (timeouts, TLS, auth)."""
    kwargs: dict[str, Any] = {"verify_certs": cfg.verify_certs}
    if cfg.ca_file:
        kwargs["ca_certs"] = cfg.ca_file
    if flavour == "elasticsearch":
        kwargs["request_timeout"] = cfg.request_timeout_s
        if cfg.api_key:
            kwargs["api_key"] = cfg.api_key
        elif cfg.username:
            kwargs["basic_auth"] = (cfg.username, cfg.password or "")
    else:
        kwargs["timeout"] = cfg.request_timeout_s
        if cfg.api_key:
            kwargs["headers"] = {"Authorization": f"ApiKey {cfg.api_key}"}
        elif cfg.username:
            kwargs["http_auth"] = (cfg.username, cfg.password or "")
        if not cfg.verify_certs:
            kwargs["ssl_show_warn"] = False
    return kwargs


def make_client(cfg: SearchConfig, flavour: Flavour, **overrides: Any) -> Any:
    """An ``Elasticsearch`` or ``OpenSearch`` client for ``cfg``."""
    kwargs = {**client_kwargs(cfg, flavour), **overrides}
    if flavour == "opensearch":
        from opensearchpy import OpenSearch

        return OpenSearch(cfg.url, **kwargs)
    from elasticsearch import Elasticsearch

    return Elasticsearch(cfg.url, **kwargs)
