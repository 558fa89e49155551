"""SPEC 4 dimensions for CMCD traffic, which carries none but ``cid``: from the collector URL's
query arguments, from headers an edge or proxy sets, and from the media host (config map).

Precedence for ``cdn``: the configured host map (where the media really came from), then the
report's own ``cdn`` key or a configured CDN key, then a header, then a query argument. For the
other dimensions: header over query argument. Values SPEC 4 would refuse (control characters,
longer than 256) are ignored and counted, so one bad header does not cost the report.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from collectors.http.cmcd_config import CmcdConfig
from playscope.events import DIMENSIONS, MAX_DIM_LEN

Ignore = Callable[[str, str], None]


def valid_dimension(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_DIM_LEN and value.isprintable()


class Dimensions:
    """Resolves a request's dimensions once, and each report's ``cdn`` from its media host."""

    def __init__(self, config: CmcdConfig) -> None:
        self.headers = {name.lower(): dim for name, dim in config.dimension_headers.items() if dim in DIMENSIONS}
        self.exact = {host.lower(): cdn for host, cdn in config.cdn_hosts.items() if not host.startswith("*.")}
        self.suffixes = sorted(((host[1:].lower(), cdn) for host, cdn in config.cdn_hosts.items()
                                if host.startswith("*.")), key=lambda p: -len(p[0]))
        self.cdn_keys = tuple(config.cdn_keys)

    def for_request(self, query: Mapping[str, str], headers: Mapping[str, str], ignore: Ignore) -> dict[str, str]:
        """Dimensions the request itself carries (query arguments, then headers over them)."""
        out: dict[str, str] = {}
        for dim in DIMENSIONS:
            argument = query.get(dim)
            if argument is not None:
                if valid_dimension(argument):
                    out[dim] = argument
                else:
                    ignore("dimension", "invalid")
        for name, value in headers.items():
            target = self.headers.get(name.lower())
            if target is None:
                continue
            value = value.strip()
            if valid_dimension(value):
                out[target] = value
            else:
                ignore("dimension", "invalid")
        return out

    def cdn_of_report(self, cmcd: Mapping[str, Any]) -> str | None:
        """The CDN a report names or whose host the map knows; None when neither."""
        named: str | None = None
        for key in self.cdn_keys:
            value = _text(cmcd.get(key))
            if value:
                mapped = self.cdn_for_host(value)
                if mapped:
                    return mapped
                named = named or value
        for key in ("url", "nor"):
            value = _text(cmcd.get(key))
            if value and "://" in value:
                mapped = self.cdn_for_host(_hostname(value))
                if mapped:
                    return mapped
        own = cmcd.get("cdn")
        return named or (own if isinstance(own, str) else None)

    def cdn_for_host(self, host: str) -> str | None:
        host = host.lower().rstrip(".")
        if "://" in host:
            host = _hostname(host).lower()
        if host in self.exact:
            return self.exact[host]
        for suffix, cdn in self.suffixes:
            if host.endswith(suffix):
                return cdn
        return None


def _hostname(url: str) -> str:
    """The host of ``url``; "" when it has none or cannot be read (``http://[::1/x`` makes
    urlsplit raise), so an unusable media URL leaves the CDN unknown instead of costing the report."""
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


def _text(value: Any) -> str | None:
    if isinstance(value, list):  # v2 inner lists: nor=("seg_1.ts")
        value = value[0] if value else None
        value = getattr(value, "value", value)
    return value if isinstance(value, str) else None
