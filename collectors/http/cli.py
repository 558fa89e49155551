"""``playscope collector``: serve the HTTP beacon collector (uvicorn)."""

from __future__ import annotations

import argparse
import signal
import socket
import ssl
from typing import Any

import uvicorn

from collectors.http.app import create_app
from collectors.http.config import CollectorConfig
from collectors.http.spool import adopt_orphans, worker_directory
from collectors.http.workers import Supervisor, listen
from playscope.config import Settings
from playscope.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="listen address (default: collector.host, 0.0.0.0)")
    parser.add_argument("--port", type=int, help="listen port (default: collector.port, 8080)")
    parser.add_argument("--workers", type=int,
                        help="worker processes sharing the port (default: collector.workers, 1)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    config = settings.section("collector", CollectorConfig)
    workers = args.workers if args.workers is not None else config.workers
    if workers < 1:
        raise ConfigError(f"--workers: must be at least 1, got {workers}")
    host = args.host or config.host
    port = args.port if args.port is not None else config.port
    tls = ssl_options(config)
    if config.spool_dir is not None:
        adopt_orphans(config.spool_dir, workers)

    def server_config(index: int) -> uvicorn.Config:
        spool = worker_directory(config.spool_dir, index) if config.spool_dir is not None else None
        app = create_app(settings, config.model_copy(update={"spool_dir": spool}),
                         worker=index if workers > 1 else None)
        return uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, lifespan="on",
                              timeout_graceful_shutdown=int(config.produce_timeout_s) + 5, **tls)

    if workers == 1:
        # uvicorn shuts down gracefully on SIGTERM and then raises the signal again under the
        # handler that was there before it: a no-op one makes that graceful stop exit 0 (as
        # with --workers), not "killed by SIGTERM"
        previous = signal.signal(signal.SIGTERM, _graceful)
        try:
            uvicorn.Server(server_config(0)).run()
        finally:
            signal.signal(signal.SIGTERM, previous)
        return 0

    server_config(0)  # config errors (a bad keys file, say) stop the start here, not in a restart loop

    def serve_one(index: int, sock: socket.socket) -> None:
        uvicorn.Server(server_config(index)).run(sockets=[sock])

    sock = listen(host, port)
    return Supervisor(workers, sock, serve_one, stop_timeout_s=config.produce_timeout_s + 15).run()


def _graceful(_signum: int, _frame: object) -> None:
    """SIGTERM after uvicorn's own shutdown: nothing left to do."""


def ssl_options(config: CollectorConfig) -> dict[str, Any]:
    """uvicorn's TLS arguments from ``collector.tls`` (none: plain HTTP); files checked up front."""
    tls = config.tls
    if tls is None:
        return {}
    for key, path in (("cert_file", tls.cert_file), ("key_file", tls.key_file), ("client_ca_file", tls.client_ca_file)):
        if path is not None and not path.is_file():
            raise ConfigError(f"collector.tls.{key}: file not found: {path}")
    options: dict[str, Any] = {"ssl_certfile": str(tls.cert_file), "ssl_keyfile": str(tls.key_file),
                               "ssl_keyfile_password": tls.key_password}
    if tls.client_ca_file is not None:
        options.update(ssl_ca_certs=str(tls.client_ca_file), ssl_cert_reqs=ssl.CERT_REQUIRED)
    return options
