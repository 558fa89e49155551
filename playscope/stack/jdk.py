"""Find a JDK that can run a given server, without the user having to point at one.

Order: ``$JAVA_HOME`` if it meets the minimum, else the newest JDK under /usr/lib/jvm (or
``$PLAYSCOPE_JVM_DIR``) that does. When none fits, the error names the minimum and what was found.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from playscope.errors import JdkNotFound

JVM_DIRS = (Path("/usr/lib/jvm"), Path("/usr/local/lib/jvm"), Path("/opt/java"))


@dataclass(frozen=True)
class Jdk:
    home: Path
    major: int

    @property
    def java(self) -> Path:
        return self.home / "bin" / "java"


def _major_from_release(home: Path) -> int | None:
    release = home / "release"
    if not release.is_file():
        return None
    match = re.search(r'^JAVA_VERSION="([^"]+)"', release.read_text(errors="replace"), re.M)
    return _parse_major(match.group(1)) if match else None


def _parse_major(version: str) -> int | None:
    match = re.match(r"(\d+)(?:\.(\d+))?", version)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major  # "1.8" -> 8


def _major_from_binary(java: Path) -> int | None:
    try:
        out = subprocess.run(
            [str(java), "-version"], capture_output=True, text=True, timeout=20, check=False
        ).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "([^"]+)"', out)
    return _parse_major(match.group(1)) if match else None


def probe(home: Path) -> Jdk | None:
    """The JDK at ``home``, or None if there is no usable java there."""
    java = home / "bin" / "java"
    if not os.access(java, os.X_OK):
        return None
    major = _major_from_release(home) or _major_from_binary(java)
    return Jdk(home.resolve(), major) if major else None


def candidates() -> list[Jdk]:
    """Every JDK found on this machine, newest first (symlinks to the same one counted once)."""
    roots = [Path(p) for p in os.environ.get("PLAYSCOPE_JVM_DIR", "").split(os.pathsep) if p]
    seen: dict[Path, Jdk] = {}
    for root in [*roots, *JVM_DIRS]:
        if not root.is_dir():
            continue
        for home in sorted(root.iterdir()):
            jdk = probe(home)
            if jdk and jdk.home not in seen:
                seen[jdk.home] = jdk
    return sorted(seen.values(), key=lambda j: j.major, reverse=True)


def find_jdk(minimum: int, server: str) -> Jdk:
    """A JDK of at least ``minimum`` for ``server``, or JdkNotFound naming what is missing."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        jdk = probe(Path(java_home))
        if jdk and jdk.major >= minimum:
            return jdk
    found = candidates()
    for jdk in found:
        if jdk.major >= minimum:
            return jdk
    have = ", ".join(f"{j.home} (Java {j.major})" for j in found) or "none"
    raise JdkNotFound(
        f"{server} needs Java {minimum} or newer; found {have}. "
        f"Install one (e.g. apt-get install openjdk-{minimum}-jdk-headless) or set JAVA_HOME."
    )
