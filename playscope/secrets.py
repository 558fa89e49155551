"""Secrets in the configuration: read from the environment or from files, never shown.

* ``${VAR}`` (or ``${VAR:-default}``) in any string value of the config file is replaced by the
  environment variable, so the file can be committed without its secrets.
* ``<name>_file: PATH`` for a secret key (``password_file``, ``secret_file``, ``api_key_file``,
  ``token_file``, ``key_password_file``) reads the value from that file (trailing newline
  stripped): Kubernetes and Docker secrets, systemd credentials.
* No CLI flag takes a secret: command lines are visible to every user of the machine (``ps``).
* :func:`redacted` masks every secret of a config tree (for ``--print-config``), and
  :func:`secret_values` lists them so the log formatter can mask them wherever they appear.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from playscope.errors import ConfigError

SECRET_KEYS = frozenset({"password", "secret", "api_key", "token", "key_password", "api_keys", "privacy_secret"})
MASK = "***"
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]+):(?P<pw>[^@/\s]+)@", re.I)


# prefixed forms (grafana_password, grafana_token, kibana_api_key, ...); a bare ``_key`` is not
# one: ``tls.key_file`` is the path the TLS loader opens, not a secret to read in its place
SECRET_SUFFIXES = ("_password", "_secret", "_token", "_api_key")


def is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return lowered in SECRET_KEYS or lowered.endswith(SECRET_SUFFIXES)


def resolve_secrets(tree: Any, environ: Mapping[str, str], where: str, path: str = "") -> Any:
    """Expand ``${VAR}`` and read ``*_file`` secrets in ``tree`` (in place for mappings)."""
    if isinstance(tree, dict):
        for key in list(tree):
            dotted = f"{path}.{key}" if path else str(key)
            value = tree[key]
            if isinstance(key, str) and key.endswith("_file") and is_secret_key(key[: -len("_file")]):
                stem = key[: -len("_file")]
                if tree.get(stem) is not None:
                    raise ConfigError(f"{where}: {dotted}: give either {stem} or {key}, not both")
                file = resolve_secrets(value, environ, where, dotted)
                try:
                    tree[stem] = Path(str(file)).read_text().rstrip("\r\n")
                except OSError as exc:
                    raise ConfigError(f"{where}: {dotted}: cannot read {file!r}: {exc.strerror}") from None
                except ValueError as exc:  # not UTF-8 text, or a NUL in the path
                    reason = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else str(exc)
                    raise ConfigError(f"{where}: {dotted}: cannot read {file!r}: {reason}") from None
                del tree[key]
            else:
                tree[key] = resolve_secrets(value, environ, where, dotted)
        return tree
    if isinstance(tree, list):
        return [resolve_secrets(v, environ, where, f"{path}[{i}]") for i, v in enumerate(tree)]
    if isinstance(tree, str) and "${" in tree:
        def sub(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in environ:
                return environ[name]
            if default is not None:
                return default
            raise ConfigError(f"{where}: {path}: environment variable {name} is not set")

        return _ENV.sub(sub, tree)
    return tree


def redacted(tree: Any, _key: str = "") -> Any:
    """A copy of ``tree`` with every secret value masked (and passwords inside URLs)."""
    if isinstance(tree, dict):
        return {k: (MASK if is_secret_key(str(k)) and tree[k] not in (None, "", [], {}) else redacted(v, str(k)))
                for k, v in tree.items()}
    if isinstance(tree, list):
        return [redacted(v) for v in tree]
    if isinstance(tree, str):
        return _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", tree)
    return tree


def secret_values(tree: Any) -> set[str]:
    """Every secret string in ``tree`` (values of secret keys, passwords inside URLs)."""
    found: set[str] = set()

    def walk(node: Any, secret: bool) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, secret or is_secret_key(str(k)))
        elif isinstance(node, list):
            for v in node:
                walk(v, secret)
        elif isinstance(node, str) and node:
            if secret:
                found.add(node)
            found.update(m["pw"] for m in _URL_CREDENTIALS.finditer(node))

    walk(tree, False)
    return {s for s in found if len(s) >= 4}

