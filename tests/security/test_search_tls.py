"""Search clients over HTTPS with basic auth, through a real nginx (TLS + htpasswd) in front of the
shared Elasticsearch and OpenSearch (whose local distributions run with security off)."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest

from alerts.dryrun import search_client
from indexers.backends import ElasticsearchBackend, OpenSearchBackend
from playscope.config import SearchConfig, Settings
from playscope.search import make_client
from playscope.stack.certs import ensure_ca, issue
from playscope.stack.ports import free_port

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
USER, PASSWORD = "indexer", "nginx-basic-pw-4321"

_CONF = """daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
{user}
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  client_max_body_size 100m;
{servers}
}}
"""
_SERVER = """  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {cert}; ssl_certificate_key {key};
    ssl_protocols TLSv1.2 TLSv1.3;
    auth_basic "playscope"; auth_basic_user_file {d}/htpasswd;
    location / {{
      proxy_pass {upstream};
      proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Authorization "";
    }}
  }}
"""


@pytest.fixture(scope="module")
def proxy(stack: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    if not os.path.exists(NGINX):
        pytest.fail("nginx is not installed (apt-get install nginx; scripts/bootstrap.sh does it)")
    d = tmp_path_factory.mktemp("nginx")
    ca = ensure_ca(d / "tls")
    leaf = issue(ca, d / "tls", "proxy")
    hashed = subprocess.run(["openssl", "passwd", "-5", "-stdin"], input=PASSWORD, capture_output=True, text=True,
                            check=True).stdout.strip()
    (d / "htpasswd").write_text(f"{USER}:{hashed}\n")
    ports = {"elasticsearch": free_port(), "opensearch": free_port()}
    upstreams = {"elasticsearch": "http://127.0.0.1:9200", "opensearch": "http://127.0.0.1:9201"}
    servers = "".join(_SERVER.format(port=ports[n], cert=leaf.cert, key=leaf.key, d=d, upstream=upstreams[n])
                      for n in ports)
    user = "user root;" if os.geteuid() == 0 else ""
    (d / "nginx.conf").write_text(_CONF.format(d=d, servers=servers, user=user))
    proc = subprocess.Popen([NGINX, "-p", str(d), "-c", str(d / "nginx.conf"), "-e", str(d / "error.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ctx = ssl.create_default_context(cafile=str(ca.cert))
    deadline = time.monotonic() + 15
    while True:
        try:
            httpx.get(f"https://127.0.0.1:{ports['elasticsearch']}/", verify=ctx, timeout=1)
            break
        except httpx.HTTPError:
            assert proc.poll() is None and time.monotonic() < deadline, (d / "error.log").read_text()
            time.sleep(0.1)
    try:
        yield {"ca": str(ca.cert), **{n: f"https://127.0.0.1:{p}" for n, p in ports.items()}}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _cfg(url: object, ca: object, password: str = PASSWORD) -> SearchConfig:
    return SearchConfig(url=str(url), username=USER, password=password, ca_file=str(ca))


def test_indexer_backends_over_https_with_basic_auth(proxy: dict, settings: Settings) -> None:
    for flavour, backend_cls in (("elasticsearch", ElasticsearchBackend), ("opensearch", OpenSearchBackend)):
        backend = backend_cls(_cfg(proxy[flavour], proxy["ca"]))
        try:
            prefix = f"{settings.index_prefix}tls-{flavour[:2]}-"
            assert backend.install_templates(prefix)
            index = f"{prefix}playscope-logs-2026.11.21"
            body = orjson.dumps({"index": {"_index": index, "_id": "1"}}) + b"\n" + orjson.dumps(
                {"ts": 1_795_300_000_000, "service": "api", "message": "over tls"}) + b"\n"
            resp = backend.bulk(body)
            assert not resp.get("errors"), resp
            assert index in backend.index_names(f"{prefix}playscope-logs-*")
            backend.delete_index(index)
        finally:
            backend.close()


def test_wrong_password_and_unknown_ca_are_refused(proxy: dict) -> None:
    from elastic_transport import TlsError as EsConnectionError
    from elasticsearch import AuthenticationException

    with make_client(_cfg(proxy["elasticsearch"], proxy["ca"], password="wrong"), "elasticsearch") as client, \
            pytest.raises(AuthenticationException):
        client.info()
    no_ca = SearchConfig(url=proxy["elasticsearch"], username=USER, password=PASSWORD)
    with make_client(no_ca, "elasticsearch", max_retries=0) as client, \
            pytest.raises(EsConnectionError, match="TLS error"):
        client.info()
    assert httpx.get(proxy["elasticsearch"], verify=proxy["ca"], timeout=10).status_code == 401


def test_alert_dry_run_client_over_https(proxy: dict, settings: Settings) -> None:
    for flavour in ("elasticsearch", "opensearch"):
        secure = settings.model_copy(update={flavour: _cfg(proxy[flavour], proxy["ca"]), "backend": flavour})
        client = search_client(secure)
        try:
            assert client.cluster.health()["status"] in ("green", "yellow")
        finally:
            client.close()
