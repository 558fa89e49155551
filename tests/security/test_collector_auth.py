"""The collector over HTTPS with per-application hashed API keys, origins, rate limits, reloads."""

from __future__ import annotations

import ssl
import time
from pathlib import Path

import httpx
import pytest
import yaml
from helpers import running_collector

from collectors.http.auth import hash_key
from playscope.config import Settings
from playscope.stack.certs import ensure_ca, issue

# inside SPEC 4's clock bounds (7 days behind the receive time at most)
RECENT_TS = (int(time.time() * 1000) - 3_600_000) // 1000 * 1000

WEB_KEY, TV_KEY, NEW_KEY = "web-key-0123456789", "tv-key-0123456789", "new-key-0123456789"


def _event(i: int) -> dict:
    return {"event_id": f"auth-{i}", "session_id": "s-auth", "ts": RECENT_TS + i, "type": "heartbeat"}


def test_https_keys_origins_limits_and_reload(settings: Settings, tmp_path: Path) -> None:
    ca = ensure_ca(tmp_path / "tls")
    server = issue(ca, tmp_path / "tls", "collector")
    keys_file = tmp_path / "keys.yaml"
    keys_file.write_text(yaml.safe_dump({"applications": [
        {"name": "tv", "key_sha256": hash_key(TV_KEY), "rate_limit_per_s": 0.5, "rate_burst": 2,
         "allowed_origins": []},  # not a browser app
    ]}))
    apps = [{"name": "web", "key_sha256": hash_key(WEB_KEY), "allowed_origins": ["https://web.example"]}]
    with running_collector(settings, tls={"cert_file": server.cert, "key_file": server.key},
                           applications=apps, keys_file=keys_file) as url:
        assert url.startswith("https://")
        with httpx.Client(verify=ssl.create_default_context(cafile=str(ca.cert)), timeout=30) as client:
            post = lambda key, **kw: client.post(f"{url}/v1/events", json=[_event(0)],  # noqa: E731
                                                 headers={"X-API-Key": key, **kw.get("headers", {})})
            # TLS handshake verified against the generated CA; an unknown CA is refused.
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                httpx.get(f"{url}/healthz", timeout=10)
            assert client.get(f"{url}/healthz").status_code == 200
            assert client.post(f"{url}/v1/events", json=[_event(0)]).status_code == 401  # no key
            assert post("not-a-key").status_code == 401
            assert post(WEB_KEY, headers={"Origin": "https://web.example"}).status_code == 202
            ok = post(WEB_KEY, headers={"Origin": "https://web.example"})
            assert ok.headers["access-control-allow-origin"] == "https://web.example"
            assert post(WEB_KEY, headers={"Origin": "https://evil.example"}).status_code == 403
            evil_preflight = client.options(f"{url}/v1/events", headers={
                "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
            assert evil_preflight.status_code == 400
            # The tv application has its own rate limit (burst 2); web is not limited.
            tv = [post(TV_KEY).status_code for _ in range(4)]
            assert tv[:2] == [202, 202] and tv[-1] == 429
            assert [post(WEB_KEY).status_code for _ in range(4)] == [202] * 4
            # Keys reload when the file changes, without a restart.
            assert post(NEW_KEY).status_code == 401
            keys_file.write_text(yaml.safe_dump({"applications": [
                {"name": "new", "key_sha256": hash_key(NEW_KEY)}]}))
            deadline = time.monotonic() + 10
            while post(NEW_KEY).status_code != 202:
                assert time.monotonic() < deadline, "keys file change not picked up"
                time.sleep(0.3)
            assert post(TV_KEY).status_code == 401  # removed with the reload
            # A broken keys file keeps the keys in force.
            keys_file.write_text("applications: [{name: broken")
            time.sleep(1.5)
            assert post(NEW_KEY).status_code == 202 and post(WEB_KEY).status_code == 202


def test_bad_key_hash_is_a_clear_config_error() -> None:
    from pydantic import ValidationError

    from collectors.http.config import CollectorConfig

    with pytest.raises(ValidationError, match="SHA-256 of the key as 64 hex digits"):
        CollectorConfig(applications=[{"name": "x", "key_sha256": "plain-key"}])


def test_an_empty_keys_file_or_revoking_every_key_never_switches_keys_off(settings: Settings,
                                                                          tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.yaml"
    keys_file.write_text(yaml.safe_dump({"applications": [{"name": "tv", "key_sha256": hash_key(TV_KEY)}]}))
    with running_collector(settings, keys_file=keys_file) as url, httpx.Client(timeout=30) as client:
        def status(key: str | None) -> int:
            headers = {"X-API-Key": key} if key else {}
            return client.post(f"{url}/v1/events", json=[_event(1)], headers=headers).status_code

        assert status(TV_KEY) == 202 and status(None) == 401
        # an editor that saves by truncating first: the empty file keeps the keys in force
        keys_file.write_text("")
        time.sleep(1.5)
        assert status(TV_KEY) == 202 and status(None) == 401
        # revoking the last key: every request is refused, none let through without a key
        keys_file.write_text(yaml.safe_dump({"applications": []}))
        deadline = time.monotonic() + 10
        while status(TV_KEY) != 401:
            assert time.monotonic() < deadline, "revocation not picked up"
            time.sleep(0.3)
        assert status(None) == 401


def test_a_public_key_is_limited_per_client_address_not_for_the_whole_application(settings: Settings,
                                                                                  tmp_path: Path) -> None:
    apps = [{"name": "web", "key_sha256": hash_key(WEB_KEY), "rate_limit_per_s": 0.2, "rate_burst": 2}]
    with running_collector(settings, applications=apps) as url:
        def statuses(address: str, n: int) -> list[int]:
            with httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=30) as client:
                return [client.post(f"{url}/v1/events", json=[_event(2)], headers={"X-API-Key": WEB_KEY}).status_code
                        for _ in range(n)]

        assert statuses("127.0.0.1", 3) == [202, 202, 429]  # one browser spends its own budget
        assert statuses("127.0.0.2", 2) == [202, 202]  # another viewer with the same key is not refused
