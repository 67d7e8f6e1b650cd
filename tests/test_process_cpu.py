"""The embedded host's CPU source on real processes: this process, its children, and when psutil
is needed at all."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from extended_runtime._backends.process_cpu import ProcessTreeCpu, _has_children

TREE = ProcessTreeCpu().tree_of("org.example.any")


def _in_fresh_process(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip()


def test_a_process_without_children_is_read_without_psutil() -> None:
    out = _in_fresh_process(
        """
        import os, sys
        from extended_runtime._backends.process_cpu import ProcessTreeCpu
        source = ProcessTreeCpu()
        tree = source.tree_of("org.example.a")
        sum(range(3_000_000))  # some CPU time of our own
        seconds = source.read([tree])[tree]
        me = os.times()
        print(seconds > 0, seconds <= me.user + me.system + 0.05, "psutil" in sys.modules)
        """
    )
    assert out == "True True False"


def test_a_running_child_counts_and_is_read_with_psutil() -> None:
    out = _in_fresh_process(
        """
        import os, subprocess, sys, time
        from extended_runtime._backends.process_cpu import ProcessTreeCpu
        source = ProcessTreeCpu()
        tree = source.tree_of("org.example.a")
        child = subprocess.Popen([sys.executable, "-c", "import time\\nt = time.process_time()\\n"
                                  "while time.process_time() - t < 0.6: pass\\ntime.sleep(30)"])
        time.sleep(2.0)  # the child has burnt its 0.6 s and sleeps
        me = os.times()
        seconds = source.read([tree])[tree]
        child.kill(); child.wait()
        print(seconds - (me.user + me.system) >= 0.5, "psutil" in sys.modules)
        """
    )
    assert out == "True True"


def test_looking_for_children_reaps_none() -> None:
    child = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # it has exited, and is not reaped
    assert _has_children()
    assert _has_children()  # asking again still finds it: nothing was reaped
    assert child.wait(timeout=30) == 3  # its status was kept for its owner


def test_reading_trees_it_does_not_know_gives_nothing() -> None:
    assert ProcessTreeCpu().read(["pid:1"]) == {}
    assert TREE.startswith("pid:")
