"""Stack pieces that need no running server: JDK discovery, versions, ports, indices."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from playscope.errors import JdkNotFound
from playscope.indices import FAMILIES, log_doc_id, window_doc_id
from playscope.stack import fetch
from playscope.stack.jdk import find_jdk, probe
from playscope.stack.ports import free_port, port_owner, port_taken


def fake_jdk(root: Path, name: str, version: str) -> Path:
    home = root / name
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    java.write_text("#!/bin/sh\nexit 0\n")
    java.chmod(0o755)
    (home / "release").write_text(f'JAVA_VERSION="{version}"\n')
    return home


def test_newest_jdk_meeting_the_minimum_is_chosen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_jdk(tmp_path, "jdk17", "17.0.9")
    fake_jdk(tmp_path, "jdk21", "21.0.2")
    monkeypatch.setenv("PLAYSCOPE_JVM_DIR", str(tmp_path))
    monkeypatch.setattr("playscope.stack.jdk.JVM_DIRS", ())
    monkeypatch.delenv("JAVA_HOME", raising=False)
    assert find_jdk(21, "elasticsearch").major == 21
    assert find_jdk(11, "kafka").major == 21


def test_java_home_wins_when_it_is_enough(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = fake_jdk(tmp_path, "jdk17", "17.0.9")
    fake_jdk(tmp_path, "jdk21", "21.0.2")
    monkeypatch.setenv("PLAYSCOPE_JVM_DIR", str(tmp_path))
    monkeypatch.setattr("playscope.stack.jdk.JVM_DIRS", ())
    monkeypatch.setenv("JAVA_HOME", str(old))
    assert find_jdk(17, "kafka").home == old.resolve()
    assert find_jdk(21, "elasticsearch").major == 21  # JAVA_HOME too old: look further


def test_missing_jdk_names_the_minimum_and_what_exists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_jdk(tmp_path, "jdk8", "1.8.0_392")
    monkeypatch.setenv("PLAYSCOPE_JVM_DIR", str(tmp_path))
    monkeypatch.setattr("playscope.stack.jdk.JVM_DIRS", ())
    monkeypatch.delenv("JAVA_HOME", raising=False)
    assert probe(tmp_path / "jdk8").major == 8  # type: ignore[union-attr]
    with pytest.raises(JdkNotFound, match=r"opensearch needs Java 21 or newer; found .*Java 8"):
        find_jdk(21, "opensearch")


def test_versions_are_pinned_in_the_pom() -> None:
    versions = fetch.versions()
    assert set(versions) >= {"kafka", "elasticsearch", "opensearch"}
    assert all(v[0].isdigit() for v in versions.values())


def test_port_in_use_is_detected_with_its_owner() -> None:
    port = free_port()
    assert not port_taken(port)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        assert port_taken(port)
        owner = port_owner(port)
        assert owner is not None and "pid" in owner


def test_daily_index_names_use_the_records_own_utc_day() -> None:
    playback = FAMILIES["playback"]
    assert playback.index_for({"ts": 1_700_000_000_000}) == "playscope-playback-2023.11.14"
    assert FAMILIES["qoe"].index_for({"window_start": 1_700_006_400_000}, "t1-") == "t1-playscope-qoe-2023.11.15"


def test_every_template_is_explicit_and_not_dynamic() -> None:
    for family in FAMILIES.values():
        mappings = family.template()["template"]["mappings"]
        assert mappings["dynamic"] is False
        assert family.time_field in mappings["properties"]


def test_document_ids_are_deterministic() -> None:
    a = {"ts": 1, "service": "api", "message": "x", "extra": [1, 2]}
    b = {"message": "x", "extra": [1, 2], "service": "api", "ts": 1}
    assert log_doc_id(a) == log_doc_id(b)
    assert log_doc_id(a) != log_doc_id({**a, "message": "y"})
    w = {"window_start": 0, "window_end": 60000, "group": "cdn", "cdn": "oca-7"}
    assert window_doc_id(w) == window_doc_id(dict(w))
    assert window_doc_id(w) != window_doc_id({**w, "cdn": "oca-8"})


def test_failed_fetch_leaves_no_half_written_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from playscope.errors import StackError

    pom = tmp_path / "pom.xml"
    text = fetch.POM.read_text().replace(f"<kafka.version>{fetch.versions()['kafka']}<",
                                         "<kafka.version>0.0.0-does-not-exist<")
    pom.write_text(text)
    monkeypatch.setattr(fetch, "POM", pom)
    fetch.versions.cache_clear()
    try:
        cache = tmp_path / "dist"
        with pytest.raises(StackError, match=r"fetching kafka 0\.0\.0-does-not-exist with Maven failed"):
            fetch.ensure_distribution(cache, "kafka", timeout_s=300)
        assert not fetch.is_cached(cache, "kafka")
        assert [p.name for p in cache.iterdir()] == []  # no staging folder, no partial dist
    finally:
        fetch.versions.cache_clear()


def test_a_home_the_service_user_cannot_reach_is_named() -> None:
    import os
    import shutil
    import tempfile

    from playscope.errors import StackError
    from playscope.stack.servers import unprivileged_prefix, unreachable_ancestor

    base = Path(tempfile.mkdtemp(dir="/tmp"))  # pytest's own tmp_path is private to root already
    base.chmod(0o755)
    locked = base / "locked"
    home = locked / "home"
    home.mkdir(parents=True)
    locked.chmod(0o700)
    try:
        assert unreachable_ancestor(home / "es") == locked
        if os.geteuid() == 0:
            with pytest.raises(StackError, match=r"cannot enter .*locked.*chmod o\+x"):
                unprivileged_prefix(home)
    finally:
        locked.chmod(0o755)
        shutil.rmtree(base)
