"""The ``collector.cmcd:`` config section: where CMCD traffic's dimensions come from, and the
limits of the per-process session memory the v1 stall estimate needs."""

from __future__ import annotations

from pydantic import Field

from playscope.config import Strict
from playscope.events import DIMENSIONS

# Headers a CDN edge, a log forwarder or a proxy can set on the request to the collector.
DEFAULT_DIMENSION_HEADERS: dict[str, str] = {
    **{f"x-playscope-{dim.replace('_', '-')}": dim for dim in DIMENSIONS},
    "cf-ipcountry": "country",
    "cloudfront-viewer-country": "country",
}


class CmcdConfig(Strict):
    # Media host -> CDN name: "edge-1.example.net" exactly, or "*.example.net" for its subdomains.
    # Matched against the CMCD v2 ``url`` key, an absolute ``nor`` URL, or a ``cdn_keys`` value.
    cdn_hosts: dict[str, str] = Field(default_factory=dict)
    # Custom CMCD keys a CDN adds (``com.example-cdn``) whose value is a CDN name or a media host.
    cdn_keys: list[str] = Field(default_factory=list)
    # Request header (any case) -> SPEC 4 dimension.
    dimension_headers: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_DIMENSION_HEADERS))
    # A v2 report whose own clock is within this of the receive time is taken as right (not shifted).
    clock_tolerance_s: float = Field(default=30.0, ge=0, le=300)
    # Sessions remembered per process for v1 stall estimates (least recently seen forgotten first).
    max_sessions: int = Field(default=50_000, ge=1)
    # A session not heard from for this long is forgotten (streams closes it after 120 s idle).
    session_ttl_s: float = Field(default=300.0, gt=0)
