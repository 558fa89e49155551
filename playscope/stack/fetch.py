"""Fetch server distributions with Maven from the pom beside this file, once, atomically.

Maven resolves the artifacts by name from Maven Central (and keeps its own ~/.m2 cache); the
result is unpacked into a temporary folder and renamed into place only when complete, so an
interrupted or failed download never leaves a half-written distribution behind.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path

from playscope.errors import StackError
from playscope.logs import log_event

POM = Path(__file__).with_name("pom.xml")
_NS = {"m": "http://maven.apache.org/POM/4.0.0"}
COMPLETE_MARKER = ".playscope-complete"

log = logging.getLogger("playscope.stack")


@cache
def versions() -> dict[str, str]:
    """Pinned versions, read from the pom (the one place they are written)."""
    root = ET.parse(POM).getroot()
    props = root.find("m:properties", _NS)
    if props is None:
        raise StackError(f"{POM}: no <properties>")
    return {
        child.tag.split("}")[1].removesuffix(".version"): (child.text or "").strip()
        for child in props
        if child.tag.endswith(".version")
    }


def dist_dir(cache_root: Path, product: str) -> Path:
    return cache_root / f"{product}-{versions()[product]}"


def is_cached(cache_root: Path, product: str) -> bool:
    return (dist_dir(cache_root, product) / COMPLETE_MARKER).is_file()


def ensure_distribution(cache_root: Path, product: str, timeout_s: float = 1800) -> Path:
    """Return the unpacked ``product`` ("kafka", "elasticsearch", "opensearch"), fetching it once.

    For Kafka the folder holds the broker's jars; for the search engines it is the
    distribution's home (with bin/, config/, lib/, modules/).
    """
    target = dist_dir(cache_root, product)
    if (target / COMPLETE_MARKER).is_file():
        return _home(target, product)
    mvn = shutil.which("mvn")
    if not mvn:
        raise StackError("Maven ('mvn') is needed to fetch the servers: apt-get install maven")
    cache_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{product}-", dir=cache_root)).resolve()
    staging.chmod(0o755)  # servers may run as an unprivileged user (see servers.unprivileged_prefix)
    cmd = [mvn, "-B", "-q", "-f", str(POM), "-P", product, "package", f"-Dplayscope.dest={staging}"]
    log_event(log, "fetch.start", product=product, version=versions()[product])
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise StackError(f"fetching {product} {versions()[product]} with Maven failed:\n{tail}")
        shutil.rmtree(staging / ".target", ignore_errors=True)
        if not any(p.name != ".target" for p in staging.iterdir()):
            raise StackError(f"fetching {product}: Maven reported success but delivered nothing")
        (staging / COMPLETE_MARKER).write_text(versions()[product])
        if target.exists():  # a leftover without the marker: an earlier failed attempt
            shutil.rmtree(target)
        staging.rename(target)
    except subprocess.TimeoutExpired:
        raise StackError(f"fetching {product} timed out after {timeout_s:.0f} s") from None
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    log_event(log, "fetch.done", product=product, path=str(target))
    return _home(target, product)


def _home(target: Path, product: str) -> Path:
    if product == "kafka":
        return target
    homes = [p for p in target.iterdir() if p.is_dir() and (p / "bin").is_dir()]
    if len(homes) != 1:
        raise StackError(f"{target}: expected one {product} distribution inside, found {len(homes)}")
    return homes[0]
