"""The daemon reads each app's CPU time from the app's own process tree (`PeerCpu`), with real
processes: a busy child, an idle one, and one that has exited."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from extended_runtime._daemon.cpu import PeerCpu

BUSY = "import time\nend = time.time() + 3\nwhile time.time() < end: pass\n"


def test_each_app_is_read_from_its_own_process_and_a_gone_one_is_left_out() -> None:
    busy = subprocess.Popen([sys.executable, "-c", BUSY])
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3)"])
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    pids = {
        "org.example.busy": busy.pid,
        "org.example.idle": idle.pid,
        "org.example.gone": gone.pid,
    }
    source = PeerCpu(pids.get)
    trees = [source.tree_of(app) for app in [*pids, "org.example.unknown"]]
    try:
        first = source.read(trees)
        time.sleep(1.0)
        second = source.read(trees)
    finally:
        busy.kill()
        idle.kill()
        busy.wait()
        idle.wait()
    assert set(second) == {"app:org.example.busy", "app:org.example.idle"}
    assert second["app:org.example.busy"] - first["app:org.example.busy"] > 0.5
    assert second["app:org.example.idle"] - first["app:org.example.idle"] < 0.1
    assert source.probe().available


def test_an_app_s_children_count_with_it() -> None:
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import subprocess, sys; subprocess.run([sys.executable, '-c', {BUSY!r}])",
        ]
    )
    source = PeerCpu({"org.example.parent": parent.pid}.get)
    try:
        time.sleep(0.5)
        first = source.read(["app:org.example.parent"])["app:org.example.parent"]
        time.sleep(1.0)
        second = source.read(["app:org.example.parent"])["app:org.example.parent"]
    finally:
        parent.kill()
        parent.wait()
    assert second - first > 0.5


def test_apps_of_one_process_share_one_reading_of_its_tree(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Many apps declared by one process: its tree is walked once per reading, not per app."""
    import psutil

    busy = subprocess.Popen([sys.executable, "-c", BUSY])
    apps = {f"org.example.app{n}": busy.pid for n in range(50)}
    source = PeerCpu(apps.get)
    walks = 0
    children = psutil.Process.children

    def counted(process: psutil.Process, recursive: bool = False) -> list[psutil.Process]:
        nonlocal walks
        walks += 1
        return children(process, recursive=recursive)

    monkeypatch.setattr(psutil.Process, "children", counted)
    try:
        time.sleep(0.3)
        reading = source.read([source.tree_of(app) for app in apps])
    finally:
        busy.kill()
        busy.wait()
    assert walks == 1
    assert len(reading) == 50
    assert len(set(reading.values())) == 1 and next(iter(reading.values())) > 0.1
