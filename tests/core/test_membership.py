"""Static-membership ids: stable for a process, unique among a host's live members of a group."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

from playscope.config import load_settings
from playscope.membership import instance_id, release

CLAIM = """
import sys, time
from playscope.config import load_settings
from playscope.membership import instance_id
print(instance_id(load_settings(environ={"PLAYSCOPE_HOME": sys.argv[2]}), sys.argv[1]), flush=True)
time.sleep(30)
"""


def test_two_processes_of_one_group_get_different_ids_and_a_replacement_gets_the_freed_one(tmp_path: Path) -> None:
    group = f"g-{uuid.uuid4().hex}"
    first = subprocess.Popen([sys.executable, "-c", CLAIM, group, str(tmp_path / "a")], stdout=subprocess.PIPE,
                             text=True)
    second = subprocess.Popen([sys.executable, "-c", CLAIM, group, str(tmp_path / "b")], stdout=subprocess.PIPE,
                              text=True)  # another home: still the same host, still another slot
    try:
        assert first.stdout is not None and second.stdout is not None
        a, b = first.stdout.readline().strip(), second.stdout.readline().strip()
        assert a and b and a != b
        first.kill()
        first.wait(10)
        third = subprocess.Popen([sys.executable, "-c", CLAIM, group, str(tmp_path / "c")], stdout=subprocess.PIPE,
                                 text=True)
        try:
            assert third.stdout is not None
            assert third.stdout.readline().strip() == a  # the killed member's id, taken back
        finally:
            third.kill()
    finally:
        first.kill()
        second.kill()


def test_an_id_is_stable_within_a_process_and_can_be_turned_off() -> None:
    settings = load_settings(environ={})
    group = f"g-{uuid.uuid4().hex}"
    try:
        assert instance_id(settings, group) == instance_id(settings, group)
    finally:
        release(group)
    off = settings.model_copy(update={"kafka": settings.kafka.model_copy(update={"static_membership": False})})
    assert instance_id(off, group) is None
    named = settings.model_copy(update={"kafka": settings.kafka.model_copy(update={"instance_id": "pod-7"})})
    assert instance_id(named, group) == "pod-7"
