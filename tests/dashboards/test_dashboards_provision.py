"""``playscope dashboards provision`` over real HTTP.

Grafana and Kibana cannot run on the test machine (neither is packaged for Debian), so a small
local HTTP server implements the endpoints provisioning uses (Grafana's data source, folder and
dashboard APIs; Kibana's saved-objects import) and records what it receives. It is a receiver,
not a model of either product: the tests check what playscope sends.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from dashboards import assets, cli
from playscope.config import Settings
from playscope.stack.ports import free_port

TOKEN = "glsa_test_token"


@dataclass
class Recorder:
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    datasources: dict[str, dict] = field(default_factory=dict)
    folders: dict[str, str] = field(default_factory=dict)
    dashboards: dict[str, dict] = field(default_factory=dict)
    kibana_objects: list[dict] = field(default_factory=list)
    kibana_fail_ids: set[str] = field(default_factory=set)


def _handler(rec: Recorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _grafana_auth(self) -> bool:
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._send(401, {"message": "Unauthorized"})
                return False
            return True

        def do_GET(self) -> None:
            rec.requests.append(("GET", self.path, None))
            if self.path == "/api/health":  # Grafana answers it without credentials
                self._send(200, {"database": "ok", "version": "11.3.0"})
                return
            if not self._grafana_auth():
                return
            if self.path.startswith("/api/datasources/uid/"):
                uid = self.path.rsplit("/", 1)[1]
                if uid in rec.datasources:
                    self._send(200, rec.datasources[uid])
                else:
                    self._send(404, {"message": "Data source not found"})
            elif self.path.startswith("/api/folders/"):
                uid = self.path.rsplit("/", 1)[1]
                if uid in rec.folders:
                    self._send(200, {"uid": uid, "title": rec.folders[uid]})
                else:
                    self._send(404, {"message": "folder not found"})
            else:
                self._send(404, {"message": "not found"})

        def do_PUT(self) -> None:
            body = json.loads(self._body())
            rec.requests.append(("PUT", self.path, body))
            if not self._grafana_auth():
                return
            uid = self.path.rsplit("/", 1)[1]
            rec.datasources[uid] = body
            self._send(200, {"message": "Datasource updated", "datasource": body})

        def do_POST(self) -> None:
            raw = self._body()
            if self.path.startswith("/api/saved_objects/_import"):
                self._kibana_import(raw)
                return
            body = json.loads(raw)
            rec.requests.append(("POST", self.path, body))
            if not self._grafana_auth():
                return
            if self.path == "/api/datasources":
                rec.datasources[body["uid"]] = body
                self._send(200, {"message": "Datasource added", "datasource": body})
            elif self.path == "/api/folders":
                rec.folders[body["uid"]] = body["title"]
                self._send(200, {"uid": body["uid"], "title": body["title"]})
            elif self.path == "/api/dashboards/db":
                rec.dashboards[body["dashboard"]["uid"]] = body
                self._send(200, {"status": "success", "uid": body["dashboard"]["uid"], "version": 1})
            else:
                self._send(404, {"message": "not found"})

        def _kibana_import(self, raw: bytes) -> None:
            rec.requests.append(("POST", self.path, None))
            if not self.headers.get("kbn-xsrf"):
                self._send(400, {"statusCode": 400, "message": "Request must contain a kbn-xsrf header."})
                return
            head = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
            message = email.parser.BytesParser(policy=email.policy.default).parsebytes(head + raw)
            parts = [p for p in message.iter_parts() if p.get_param("name", header="content-disposition") == "file"]
            text = parts[0].get_payload(decode=True).decode()
            objects = [json.loads(line) for line in text.splitlines() if line.strip()]
            rec.kibana_objects = objects
            errors = [{"id": o["id"], "type": o["type"], "error": {"type": "unknown"}}
                      for o in objects if o["id"] in rec.kibana_fail_ids]
            self._send(200, {"success": not errors, "successCount": len(objects) - len(errors), "errors": errors})

    return Handler


@pytest.fixture
def receiver() -> Iterator[tuple[str, Recorder]]:
    rec = Recorder()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(rec))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", rec
    server.shutdown()
    server.server_close()


def _settings(url: str, prefix: str = "", **extra: Any) -> Settings:
    section = {"grafana_url": url, "kibana_url": url, "grafana_token": TOKEN, "timeout_s": 5, **extra}
    return Settings.model_validate({"index_prefix": prefix, "dashboards": section})


def _run(settings: Settings, *argv: str) -> int:
    import argparse

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return cli.run(parser.parse_args(list(argv)), settings)


def test_provision_pushes_datasources_folder_dashboards_and_saved_objects(receiver: tuple[str, Recorder]) -> None:
    url, rec = receiver
    assert _run(_settings(url, prefix="acme-"), "provision") == 0

    committed = {b["uid"]: b for b in assets.grafana_dashboards().values()}
    assert set(rec.dashboards) == set(committed)
    for uid, payload in rec.dashboards.items():
        assert payload["dashboard"] == committed[uid]
        assert payload["overwrite"] is True and payload["folderUid"] == "playscope"
    assert rec.folders == {"playscope": "playscope"}
    assert set(rec.datasources) == {ds["uid"] for ds in assets.grafana_datasources()}
    windows = rec.datasources["playscope-es"]
    assert windows["jsonData"]["index"] == "acme-playscope-qoe-*,acme-playscope-service-*"
    assert windows["url"] == "http://localhost:9200"
    assert rec.datasources["playscope-prometheus"]["url"] == "http://localhost:9090"

    assert len(rec.kibana_objects) == len(assets.kibana_objects())
    titles = {o["attributes"]["title"] for o in rec.kibana_objects if o["type"] == "index-pattern"}
    assert "acme-playscope-qoe-*" in titles and all(t.startswith("acme-") for t in titles)
    assert any(p.startswith("/api/saved_objects/_import?overwrite=true") for _m, p, _b in rec.requests)


def test_second_run_updates_instead_of_creating(receiver: tuple[str, Recorder]) -> None:
    url, rec = receiver
    settings = _settings(url)
    assert _run(settings, "provision", "--only", "grafana") == 0
    rec.requests.clear()
    assert _run(settings, "provision", "--only", "grafana") == 0
    methods = [(m, p) for m, p, _b in rec.requests]
    assert ("POST", "/api/datasources") not in methods
    assert sum(1 for m, p in methods if m == "PUT" and p.startswith("/api/datasources/uid/")) == 4
    assert ("POST", "/api/folders") not in methods
    assert sum(1 for m, p in methods if p == "/api/dashboards/db") == 4
    assert rec.kibana_objects == []  # --only grafana


def test_unreachable_servers_give_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert _run(_settings(url), "provision") == 1
    err = capsys.readouterr().err
    assert f"Grafana is unreachable at {url}" in err
    assert f"Kibana is unreachable at {url}" in err


def test_wrong_grafana_token_is_named(receiver: tuple[str, Recorder], capsys: pytest.CaptureFixture[str]) -> None:
    url, rec = receiver
    assert _run(_settings(url, grafana_token="wrong"), "provision", "--only", "grafana") == 1
    assert "refused the credentials" in capsys.readouterr().err
    assert rec.dashboards == {}


def test_kibana_partial_import_failure_is_reported(receiver: tuple[str, Recorder],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    url, rec = receiver
    rec.kibana_fail_ids = {"playscope-qoe-startup"}
    assert _run(_settings(url), "provision", "--only", "kibana") == 1
    err = capsys.readouterr().err
    assert "failed: visualization playscope-qoe-startup" in err


def test_unknown_config_key_is_refused() -> None:
    from playscope.errors import ConfigError

    settings = Settings.model_validate({"dashboards": {"grafana_ulr": "http://x"}})
    with pytest.raises(ConfigError, match=r"dashboards\.grafana_ulr: unknown key"):
        _run(settings, "check")


def test_check_verb_passes_on_the_committed_files(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(Settings(), "check") == 0
    assert "dashboards: ok" in capsys.readouterr().out
