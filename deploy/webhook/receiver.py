"""The alert webhook receiver of docker-compose: the default ``oncall`` channel posts here.

It stands in for a paging integration so a stock ``docker compose up`` delivers its alerts
instead of retrying them forever. Each POST is logged to stdout as one JSON line
(``docker compose logs webhook``) and answered 200. With ``PLAYSCOPE_ALERT_WEBHOOK_SECRET`` set,
a request whose ``X-Playscope-Signature-256`` does not sign its body within five minutes is
answered 401 (the check alerts/README.md describes). ``GET /healthz`` is the health check.

Standard library only: it runs with the playscope image's Python, or any Python 3.11.

    python receiver.py [--host 0.0.0.0] [--port 9000]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY_BYTES = 1024 * 1024
TOLERANCE_S = 300


def signature_ok(header: str | None, body: bytes, secret: str, now: float) -> bool:
    """Whether ``header`` (``t=<unix s>,v1=<hex>``) signs ``body`` with ``secret`` near ``now``."""
    if not header:
        return False
    pairs = [part.strip().partition("=") for part in header.split(",")]
    stamps = [value for key, _, value in pairs if key == "t"]
    signatures = [value for key, _, value in pairs if key == "v1"]
    if len(stamps) != 1 or not stamps[0].isdigit() or abs(now - int(stamps[0])) > TOLERANCE_S:
        return False
    expected = hmac.new(secret.encode(), f"{stamps[0]}.".encode() + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, s) for s in signatures if s.isascii())


class Handler(BaseHTTPRequestHandler):
    secret = ""

    def do_GET(self) -> None:
        self._answer(200 if self.path == "/healthz" else 404, {"ok": self.path == "/healthz"})

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_BODY_BYTES:
            self._answer(413, {"error": "body too large"})
            return
        body = self.rfile.read(length)
        if self.secret and not signature_ok(
            self.headers.get("x-playscope-signature-256"), body, self.secret, time.time()
        ):
            self._answer(401, {"error": "bad signature"})
            return
        try:
            alert = json.loads(body)
        except ValueError:
            self._answer(400, {"error": "not JSON"})
            return
        print(json.dumps({"received": self.path, "alert": alert}, sort_keys=True), flush=True)
        self._answer(200, {"ok": True})

    def _answer(self, status: int, doc: dict[str, object]) -> None:
        payload = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the alerts themselves are the log."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="log every alert webhook POST")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=9000)
    args = parser.parse_args(argv)
    Handler.secret = os.environ.get("PLAYSCOPE_ALERT_WEBHOOK_SECRET", "")
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print(json.dumps({"listening": f"{args.host}:{server.server_port}"}), file=sys.stderr, flush=True)
    server.serve_forever()  # until SIGTERM (docker stop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
