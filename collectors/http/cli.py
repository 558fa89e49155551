"""``playscope collector``: serve the HTTP beacon collector (uvicorn)."""

from __future__ import annotations

import argparse
import ssl
from typing import Any

import uvicorn

from collectors.http.app import create_app
from collectors.http.config import CollectorConfig
from playscope.config import Settings
from playscope.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="listen address (default: collector.host, 0.0.0.0)")
    parser.add_argument("--port", type=int, help="listen port (default: collector.port, 8080)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    config = settings.section("collector", CollectorConfig)
    app = create_app(settings, config)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=args.host or config.host,
            port=args.port if args.port is not None else config.port,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=int(config.produce_timeout_s) + 5,
            **ssl_options(config),
        )
    )
    server.run()
    return 0


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
