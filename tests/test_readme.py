"""The README's commands and examples work as written."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)


def _block(marker: str) -> str:
    """The one Python example of the README that contains `marker`."""
    blocks = [block for block in _python_blocks() if marker in block]
    assert len(blocks) == 1, f"{len(blocks)} examples contain {marker!r}"
    return blocks[0]


def _run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_readme_opens_with_the_two_setup_commands() -> None:
    commands = _setup_commands()
    assert README.index(commands[0]) < README.index("## ")
    assert len(commands) == 2
    assert "xrs run" in commands[0]
    assert "pytest" in commands[1]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert commands[1] in ci


def test_mindfulness_example_runs_a_session() -> None:
    result = _run_python(_block("async def meditate"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("meditating until 20")
    assert lines[1].strip() == "session ended: NONE"


def test_alarm_example_schedules_and_hears_at_exit_that_it_will_not_ring() -> None:
    """The example's process exits at once: on the embedded host the alarm ends with it (the
    "process of an embedded host exits" row), its delegate hears so, and a WARNING names the
    instant that will not ring."""
    result = _run_python(_block("alarm over:"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["SCHEDULED", "alarm over: ERROR"]
    assert "the process exited before the start date " in result.stderr
    assert "this alarm will not ring" in result.stderr


def test_sync_example_runs_and_ends_its_session() -> None:
    result = _run_python(_block("org.example.stretch"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("stretching until 20")
    assert lines[1] == "INVALID NONE"


def test_host_with_a_policy_example_gives_a_90_second_session() -> None:
    code = _block("EmbeddedHost(policy=demo)") + (
        "\nfrom datetime import timedelta\n"
        "print(session.expiration_date - session.app.host.now < timedelta(seconds=91))\n"
    )
    result = _run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith("until 20")
    assert result.stdout.splitlines()[1] == "True"


def test_mock_clock_example_passes() -> None:
    result = _run_python(_block("MockClock()") + "\nprint('ok')\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_virtual_host_example_passes() -> None:
    result = _run_python(
        _block("def test_alarm_rings_until_stop") + "\ntest_alarm_rings_until_stop()\nprint('ok')\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def _setup_commands() -> list[str]:
    first = re.search(r"```sh\n(.*?)```", README, flags=re.DOTALL)
    assert first is not None
    return first.group(1).strip().splitlines()


def test_first_command_runs_a_real_session() -> None:
    """The main job of the first command, after its install step, as written."""
    xrs = shlex.split(_setup_commands()[0].split(" && ", 1)[1])
    assert xrs[0] == "xrs"
    result = subprocess.run(
        [sys.executable, "-m", "extended_runtime", *xrs[1:]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert "session started: mindfulness" in result.stderr
    assert "session ended: NONE" in result.stderr


def test_state_diagram_is_drawn_from_the_transition_table() -> None:
    from extended_runtime._core.transitions import mermaid

    assert f"```mermaid\n{mermaid()}\n```" in README


def test_declaration_example_declares_an_app(tmp_path: Path) -> None:
    from extended_runtime import App, SessionType

    block = re.search(r"```toml\n(.*?)```", README, flags=re.DOTALL)
    assert block is not None
    (tmp_path / "pyproject.toml").write_text(block.group(1), encoding="utf-8")
    app = App.from_environment(tmp_path, {})
    assert (app.app_id, app.background_mode) == ("org.example.breathe", SessionType.MINDFULNESS)
    assert app.launch == ("python", "-m", "breathe")


def test_terminal_example_without_a_terminal_follows_nothing_and_says_why() -> None:
    """Here there is no terminal (`start_new_session`); `test_terminal.py` types Ctrl-Z into
    the same example on a real one."""
    result = subprocess.run(
        [sys.executable, "-c", _block("follow_terminal(app)")],
        input="\n",
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("following the terminal: False - no controlling terminal")
    assert lines[-1] == "session ended: NONE"
