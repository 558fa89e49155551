"""Who may send: API keys per application, stored hashed, reloadable; CORS per application; TLS.

An application is a name, the SHA-256 (hex) of its key, the browser origins allowed to use it
and its own rate limit. Keys live in the ``collector:`` section (``applications:``) or, to be
changed without a restart, in a ``keys_file`` that is re-read on SIGHUP and whenever its
modification time changes (checked at most once a second). A configured ``keys_file`` always
means keys are required, even when it lists none (``applications: []`` revokes every key: all
requests get 401). A file that fails to load, or an empty one (an editor that saves by truncating
first), leaves the previous keys in force and logs why (``collector.keys_reload_failed``).

A presented key is hashed and compared with every stored hash in constant time
(``hmac.compare_digest``, no early exit), so timing tells nothing about which key was close.

Make a key and its hash with ``python -c "import secrets,hashlib; k=secrets.token_urlsafe(32);
print(k, hashlib.sha256(k.encode()).hexdigest())"``; give the key to the application, put only
the hash in the config.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import Field, ValidationError, field_validator
from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from collectors.http.ratelimit import RateLimiter
from playscope.config import Strict
from playscope.logs import log_event

log = logging.getLogger("playscope.collector")


class TlsConfig(Strict):
    """``collector.tls``: serve HTTPS with this certificate chain and key (PEM)."""

    cert_file: Path
    key_file: Path
    key_password: str | None = Field(default=None, repr=False)
    client_ca_file: Path | None = None  # set to require client certificates (mutual TLS)


class ApplicationKey(Strict):
    name: str = Field(min_length=1)
    key_sha256: str
    allowed_origins: list[str] = ["*"]
    rate_limit_per_s: float = Field(default=0.0, ge=0)  # per client address; 0: the collector's
    rate_burst: int | None = Field(default=None, ge=1)
    total_rate_limit_per_s: float = Field(default=0.0, ge=0)  # the whole application; 0: none

    @field_validator("key_sha256")
    @classmethod
    def _hex(cls, value: str) -> str:
        value = value.strip().lower()
        if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
            raise ValueError("must be the SHA-256 of the key as 64 hex digits (the key itself is never stored)")
        return value


class KeysFile(Strict):
    applications: list[ApplicationKey] = []


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass
class Application:
    name: str
    digest: bytes
    origins: frozenset[str]
    limiter: RateLimiter | None  # per client address
    total_limiter: RateLimiter | None = None  # the application as a whole
    any_origin: bool = field(init=False)

    def __post_init__(self) -> None:
        self.any_origin = "*" in self.origins

    def allows(self, origin: str) -> bool:
        return self.any_origin or origin in self.origins


class KeyStore:
    """The applications in force; thread-safe swaps on reload."""

    def __init__(self, inline: list[ApplicationKey], plain_keys: list[str], keys_file: Path | None,
                 default_origins: list[str], rate_per_s: float, burst: int) -> None:
        self.keys_file = keys_file
        self.default_origins = list(default_origins)
        self.rate_per_s, self.burst = rate_per_s, burst
        self._inline = list(inline)
        # The plain ``api_keys`` list still works: each key is hashed at load and kept only so.
        self._inline += [ApplicationKey(name=f"api_keys[{i}]", key_sha256=hash_key(k), allowed_origins=default_origins)
                         for i, k in enumerate(plain_keys)]
        self._lock = threading.Lock()
        self._apps: list[Application] = []
        self._origins: frozenset[str] = frozenset(default_origins)
        self._any_origin = "*" in default_origins
        self._stamp: tuple[int, int, int] | None = None
        self._checked = 0.0
        self.reloads = 0
        self._install(self._inline + self._read_file(initial=True))
        if self.keys_file is not None and not self._apps:
            log_event(log, "collector.no_keys", level=logging.WARNING, file=str(self.keys_file),
                      detail="keys_file lists no application: every request gets 401 until it does")

    # -- lookups ---------------------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        """Keys are required: some are configured, or a keys file is (even an empty one)."""
        return self.keys_file is not None or bool(self._apps)

    def lookup(self, presented: str) -> Application | None:
        self.maybe_reload()
        digest = hashlib.sha256(presented.encode()).digest()
        found: Application | None = None
        for app in self._apps:  # every hash compared, in constant time each
            if hmac.compare_digest(app.digest, digest):
                found = app
        return found

    def origin_allowed(self, origin: str) -> bool:
        """For CORS preflights (which carry no key): allowed for at least one application."""
        return self._any_origin or origin in self._origins

    # -- reloading -------------------------------------------------------------------------
    def maybe_reload(self, now: float | None = None) -> None:
        if self.keys_file is None:
            return
        now = time.monotonic() if now is None else now
        if now - self._checked < 1.0:
            return
        self._checked = now
        if self._file_stamp() != self._stamp:
            self.reload()

    def reload(self) -> bool:
        """Re-read the keys file (SIGHUP); keep the keys in force when it is broken."""
        try:
            apps = self._read_file(initial=False)
        except ValueError as exc:
            log_event(log, "collector.keys_reload_failed", level=logging.ERROR, file=str(self.keys_file),
                      error=str(exc))
            return False
        self._install(self._inline + apps)
        self.reloads += 1
        log_event(log, "collector.keys_reloaded", level=logging.INFO if self._apps else logging.WARNING,
                  file=str(self.keys_file), applications=len(self._apps))
        return True

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.keys_file) if self.keys_file else None
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino) if st else None

    def _read_file(self, initial: bool) -> list[ApplicationKey]:
        if self.keys_file is None:
            return []
        self._stamp = self._file_stamp()
        try:
            text = Path(self.keys_file).read_text()
            if not text.strip() and not initial:
                raise ValueError("the file is empty (write applications: [] to revoke every key)")
            raw = yaml.safe_load(text) or {}
            return KeysFile.model_validate(raw).applications
        except (OSError, ValueError, yaml.YAMLError, ValidationError) as exc:
            message = f"{self.keys_file}: {exc}"
            if initial:
                from playscope.errors import ConfigError

                raise ConfigError(f"collector.keys_file: {message}") from None
            raise ValueError(message) from None

    def _install(self, keys: list[ApplicationKey]) -> None:
        old = {a.name: a for a in self._apps}
        apps = []
        for k in keys:
            limiter = None
            if k.rate_limit_per_s > 0:
                burst = k.rate_burst or self.burst
                prev = old.get(k.name)
                same = prev and prev.limiter and (prev.limiter.rate, prev.limiter.burst) == (k.rate_limit_per_s, burst)
                limiter = prev.limiter if same and prev else RateLimiter(k.rate_limit_per_s, burst)
            total = None
            if k.total_rate_limit_per_s > 0:
                prev = old.get(k.name)
                burst = max(k.rate_burst or self.burst, 1)
                same = prev and prev.total_limiter and prev.total_limiter.rate == k.total_rate_limit_per_s
                total = prev.total_limiter if same and prev else RateLimiter(k.total_rate_limit_per_s, burst)
            apps.append(Application(k.name, bytes.fromhex(k.key_sha256), frozenset(k.allowed_origins), limiter,
                                    total))
        origins = set(self.default_origins) if not apps else {o for a in apps for o in a.origins}
        with self._lock:
            self._apps = apps
            self._origins = frozenset(origins)
            self._any_origin = "*" in origins


def cors_headers(origin: str) -> list[tuple[bytes, bytes]]:
    """The headers an answer to an allowed origin carries (the middleware and the fast path)."""
    return [(b"access-control-allow-origin", origin.encode("latin-1")),
            (b"access-control-expose-headers", b"Retry-After"), (b"vary", b"Origin")]


class KeyedCORSMiddleware:
    """CORS with the origins of the configured applications: a preflight (which carries no key)
    is answered for an origin some application allows; the request itself is then checked
    against its own key's origins (403 otherwise, see ``Collector.admit``)."""

    def __init__(self, app: ASGIApp, store: KeyStore, max_age: int = 86400) -> None:
        self.app = app
        self.store = store
        self.max_age = str(max_age)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if not origin:
            await self.app(scope, receive, send)
            return
        allowed = self.store.origin_allowed(origin)
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            if not allowed:
                await PlainTextResponse("Disallowed CORS origin", status_code=400, headers={"Vary": "Origin"})(
                    scope, receive, send)
                return
            reply = {
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                "Access-Control-Allow-Headers": headers.get("access-control-request-headers", "*"),
                "Access-Control-Max-Age": self.max_age,
                "Vary": "Origin",
            }
            await PlainTextResponse("OK", status_code=200, headers=reply)(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start" and allowed:
                message = {**message, "headers": [*message.get("headers", []), *cors_headers(origin)]}
            await send(message)

        await self.app(scope, receive, send_with_cors)
