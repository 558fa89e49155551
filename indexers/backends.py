"""The two search backends behind one small interface, chosen by ``settings.backend``.

Both clients get ``max_retries=0``: retries, backoff and their accounting belong to the
indexer (:mod:`indexers.bulk`), not to a transport that would retry silently and unbounded.
Every backend failure that may heal by itself (connection refused, timeouts, 429, 5xx, auth
not ready) is raised as :class:`BackendUnavailable`; anything else propagates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Protocol

from playscope.config import IndicesConfig, SearchConfig, Settings
from playscope.provision import ensure_templates
from playscope.search import Flavour

# Only the parts of a bulk answer the indexer reads: keeps large responses cheap to parse.
BULK_FILTER: Final = "errors,items.*.status,items.*.error"
RETRYABLE_STATUS: Final = frozenset({401, 403, 408, 429, 500, 502, 503, 504})


class BackendUnavailable(Exception):
    """The cluster did not take the request; trying again later may work."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class RequestTooLarge(Exception):
    """HTTP 413: the bulk body exceeds the cluster's ``http.max_content_length``."""


class SearchBackend(Protocol):
    @property
    def name(self) -> str: ...

    def bulk(self, body: bytes) -> dict[str, Any]:
        """POST one NDJSON bulk body; the parsed answer (``errors``, ``items``)."""

    def index_names(self, pattern: str) -> list[str]:
        """Names of the indices matching ``pattern`` (none is not an error)."""

    def delete_index(self, name: str) -> None: ...

    def install_templates(self, index_prefix: str, indices: IndicesConfig | None = None) -> list[str]:
        """Install or merge into the index templates (playscope.provision.ensure_templates)."""

    def close(self) -> None: ...


def _status(exc: Exception) -> int | None:
    for attr in ("status_code", "status"):
        value = getattr(exc, attr, None)
        if isinstance(value, int):
            return value
    meta = getattr(exc, "meta", None)
    value = getattr(meta, "status", None)
    return value if isinstance(value, int) else None


def _raise_for_status(exc: Exception) -> None:
    """Raise the HTTP error ``exc`` as BackendUnavailable (it may heal) or RequestTooLarge (413);
    return for any other status, which the caller lets propagate."""
    status = _status(exc)
    if status in RETRYABLE_STATUS:
        raise BackendUnavailable(f"HTTP {status}: {exc}", status) from None
    if status == 413:
        raise RequestTooLarge(str(exc)) from None


class _ClientBackend:
    """What both backends do alike; each wraps its own client's errors in ``_call``."""

    name: Flavour

    def __init__(self, cfg: SearchConfig) -> None:
        from playscope.search import make_client

        self.client = make_client(cfg, self.name, max_retries=0, retry_on_timeout=False)

    def _call(self, fn: Callable[[], Any]) -> Any:
        raise NotImplementedError

    def delete_index(self, name: str) -> None:
        self._call(lambda: self.client.indices.delete(index=name, ignore_unavailable=True))

    def install_templates(self, index_prefix: str, indices: IndicesConfig | None = None) -> list[str]:
        return list(self._call(lambda: ensure_templates(self.client, index_prefix, indices)))

    def close(self) -> None:
        self.client.close()

    def _get_indices(self, pattern: str) -> Any:
        return self._call(
            lambda: self.client.indices.get(index=pattern, ignore_unavailable=True, allow_no_indices=True)
        )


class ElasticsearchBackend(_ClientBackend):
    name = "elasticsearch"

    def _call(self, fn: Callable[[], Any]) -> Any:
        from elastic_transport import TransportError
        from elasticsearch import ApiError

        try:
            return fn()
        except ApiError as exc:
            _raise_for_status(exc)
            raise
        except TransportError as exc:  # connection refused, timeout, TLS
            raise BackendUnavailable(f"{type(exc).__name__}: {exc}") from None

    def bulk(self, body: bytes) -> dict[str, Any]:
        resp = self._call(lambda: self.client.bulk(operations=body, filter_path=BULK_FILTER))
        return dict(resp.body)

    def index_names(self, pattern: str) -> list[str]:
        return sorted(self._get_indices(pattern).body)


class OpenSearchBackend(_ClientBackend):
    name = "opensearch"

    def _call(self, fn: Callable[[], Any]) -> Any:
        from opensearchpy.exceptions import ConnectionError as OsConnectionError
        from opensearchpy.exceptions import TransportError

        try:
            return fn()
        except OsConnectionError as exc:  # includes timeouts
            raise BackendUnavailable(f"{type(exc).__name__}: {exc}") from None
        except TransportError as exc:
            _raise_for_status(exc)
            raise

    def bulk(self, body: bytes) -> dict[str, Any]:
        return dict(self._call(lambda: self.client.bulk(body=body, filter_path=BULK_FILTER)))

    def index_names(self, pattern: str) -> list[str]:
        return sorted(self._get_indices(pattern))


BACKENDS: Final[dict[str, Callable[[SearchConfig], SearchBackend]]] = {
    "elasticsearch": ElasticsearchBackend,
    "opensearch": OpenSearchBackend,
}


def backend_for(settings: Settings) -> SearchBackend:
    """The backend ``settings.backend`` names, configured from its section."""
    return BACKENDS[settings.backend](settings.search)
