"""The ``collector:`` config section, validated once at start-up."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from collectors.http.auth import ApplicationKey, TlsConfig
from collectors.http.cmcd_config import CmcdConfig
from collectors.http.privacy import PrivacyConfig
from playscope.config import Strict


class CollectorConfig(Strict):
    host: str = "0.0.0.0"
    port: int = Field(default=8080, ge=0, le=65535)
    # Processes serving the port (collectors/http/workers.py): one per core the collector may use.
    workers: int = Field(default=1, ge=1, le=64)
    # CORS: origins allowed to post beacons from a browser ("*" = any).
    allowed_origins: list[str] = ["*"]
    max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    max_events_per_request: int = Field(default=5000, ge=1)
    # An item larger than this once encoded is refused at validation (and dead-lettered with a
    # cut original): Kafka would refuse it for good (the producer's message.max.bytes is 1 MB).
    max_record_bytes: int = Field(default=900_000, ge=1024, le=1_000_000)
    # Ingest requests served at once by one worker; beyond it a request gets 503 with
    # Retry-After at once, so a surge turns into fast refusals instead of timeouts.
    max_concurrent_requests: int = Field(default=64, ge=1)
    # Request rate per client address (with API keys: per application and client address);
    # 0 disables the limit.
    rate_limit_per_s: float = Field(default=0.0, ge=0)
    rate_burst: int = Field(default=100, ge=1)
    # Empty: no authentication. Otherwise every request needs one of these keys
    # (header X-API-Key, "Authorization: Bearer KEY", or ?api_key= for sendBeacon).
    api_keys: list[str] = Field(default_factory=list, repr=False)
    # How long a request waits for Kafka's acknowledgement before answering 503.
    produce_timeout_s: float = Field(default=10.0, gt=0, le=300)
    retry_after_s: int = Field(default=5, ge=1)
    # Optional on-disk spool used while the broker is unreachable (None: answer 503 instead).
    spool_dir: Path | None = None
    spool_max_bytes: int = Field(default=512 * 1024 * 1024, ge=1024 * 1024)
    log_level: str = "INFO"
    # Older alias of the top-level privacy: section (playscope/privacy.py); set one or the other.
    privacy: PrivacyConfig = PrivacyConfig()
    # HTTPS (certificate and key from files); None serves plain HTTP (behind a TLS-terminating proxy).
    tls: TlsConfig | None = None
    # API keys per application, stored as SHA-256 hex, each with its origins and rate limit
    # (collectors/http/auth.py). keys_file holds more of them and is reloaded on change or SIGHUP.
    applications: list[ApplicationKey] = Field(default_factory=list, repr=False)
    keys_file: Path | None = None
    # CMCD: dimensions from the request and the media host, v1 session memory (collectors/README.md).
    cmcd: CmcdConfig = CmcdConfig()
