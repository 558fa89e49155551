"""scripts/bootstrap.sh stops only the daemons its own package install started: a prometheus or
nginx that was running before belongs to the machine and is left alone. The system tools are
stand-ins on PATH (apt-get, dpkg-query, systemctl), since installing packages is not a test."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

STUBS = {
    # every package missing, so the script installs
    "dpkg-query": "#!/bin/sh\nexit 1\n",
    # the install starts every daemon (as Debian's packages do)
    "apt-get": "#!/bin/sh\n[ \"$1\" = install ] && for s in prometheus prometheus-alertmanager "
               "prometheus-node-exporter nginx; do touch \"$STATE/$s\"; done\nexit 0\n",
    "systemctl": "#!/bin/sh\ncase \"$1\" in\n  is-active) [ -e \"$STATE/$3\" ];;\n"
                 "  disable) rm -f \"$STATE/$3\"; echo \"$3\" >> \"$STATE/stopped.log\";;\nesac\n",
    "service": "#!/bin/sh\nexit 1\n",
    "sudo": "#!/bin/sh\nexec \"$@\"\n",
}


def test_bootstrap_stops_only_the_daemons_its_install_started(tmp_path: Path) -> None:
    tree, bin_dir, state = tmp_path / "tree", tmp_path / "bin", tmp_path / "state"
    (tree / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "bootstrap.sh", tree / "scripts" / "bootstrap.sh")
    (tree / "pyproject.toml").write_text("")
    (tree / ".venv" / "bin").mkdir(parents=True)
    (tree / ".venv" / "bin" / "python").symlink_to(sys.executable)
    stamp = tree / ".venv" / ".playscope-installed"
    stamp.touch()
    os.utime(tree / "pyproject.toml", (1, 1))  # older than the stamp: no pip install
    bin_dir.mkdir()
    for name, body in STUBS.items():
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    state.mkdir()
    (state / "prometheus").touch()  # the machine's own Prometheus, running before
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "STATE": str(state)}
    done = subprocess.run(["bash", str(tree / "scripts" / "bootstrap.sh")], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    stopped = set((state / "stopped.log").read_text().split())
    assert stopped == {"prometheus-alertmanager", "prometheus-node-exporter", "nginx"}
    assert (state / "prometheus").exists(), "a daemon running before the install was stopped"
