"""Where the daemon lives, how a client finds it, and its systemd user unit.

Everything here is real: folders and files under `tmp_path`, processes that are alive or dead,
a bound `AF_UNIX` socket, a lock contended by a child process, and `systemd-analyze verify` on
the unit file. The one stand-in is the `run` given to `install_unit`, which records the
`systemctl --user` commands instead of running them: no user manager can run on this machine
(systemd is not PID 1 here).
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

import extended_runtime
from extended_runtime._daemon import paths, status, unit
from extended_runtime._daemon.status import PROTOCOL_VERSION, DaemonStatus

T0 = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
NOBODY = 65534


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _as_root() -> None:
    if os.getuid() != 0:
        pytest.skip("making a file of another user needs root (os.chown); this runs as a user")


# -- paths ------------------------------------------------------------------------------------


def test_runtime_dir_prefers_the_override_then_xdg_then_tmp() -> None:
    uid = os.getuid()
    assert paths.runtime_dir({"XRS_RUNTIME_DIR": "/srv/x", "XDG_RUNTIME_DIR": "/run/user/7"}) == (
        Path("/srv/x")
    )
    assert paths.runtime_dir({"XDG_RUNTIME_DIR": "/run/user/7"}) == Path(
        "/run/user/7/extended-runtime"
    )
    assert paths.runtime_dir({}) == Path(f"/tmp/extended-runtime-{uid}")
    # the XDG specification: a relative value is invalid and ignored
    assert paths.runtime_dir({"XDG_RUNTIME_DIR": "run"}) == Path(f"/tmp/extended-runtime-{uid}")
    assert paths.socket_path({"XRS_RUNTIME_DIR": "/srv/x"}) == Path("/srv/x/daemon.sock")
    assert paths.status_path({"XRS_RUNTIME_DIR": "/srv/x"}) == Path("/srv/x/daemon.json")


def test_state_and_config_follow_xdg_with_home_defaults_and_overrides() -> None:
    home = {"HOME": "/home/ada"}
    assert paths.state_dir(home) == Path("/home/ada/.local/state/extended-runtime")
    assert paths.database_path(home) == Path(
        "/home/ada/.local/state/extended-runtime/daemon.sqlite3"
    )
    assert paths.state_dir({**home, "XDG_STATE_HOME": "/s"}) == Path("/s/extended-runtime")
    assert paths.state_dir({**home, "XRS_STATE_DIR": "/t"}) == Path("/t")
    assert paths.config_path(home) == Path("/home/ada/.config/extended-runtime/config.toml")
    assert paths.config_path({**home, "XDG_CONFIG_HOME": "/c"}) == Path(
        "/c/extended-runtime/config.toml"
    )
    assert paths.config_path({**home, "XRS_CONFIG": "/etc/x.toml"}) == Path("/etc/x.toml")
    assert paths.user_unit_dir(home) == Path("/home/ada/.config/systemd/user")


def test_a_relative_override_is_refused_with_the_variable_named() -> None:
    with pytest.raises(ValueError, match="XRS_RUNTIME_DIR='rt' is a relative path"):
        paths.runtime_dir({"XRS_RUNTIME_DIR": "rt"})


def test_the_process_environment_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XRS_RUNTIME_DIR", "/srv/from-environ")
    assert paths.runtime_dir() == Path("/srv/from-environ")


def test_a_new_runtime_dir_is_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        made = paths.ensure_private_dir(tmp_path / "a" / "b" / "runtime")
    finally:
        os.umask(old)
    assert made == tmp_path / "a" / "b" / "runtime"
    assert made.is_dir()
    assert _mode(made) == 0o700


def test_an_open_runtime_dir_is_tightened(tmp_path: Path) -> None:
    folder = tmp_path / "runtime"
    folder.mkdir()
    folder.chmod(0o755)
    paths.ensure_private_dir(folder)
    assert _mode(folder) == 0o700


def test_a_symlink_is_refused_and_its_target_left_alone(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o755)
    target.chmod(0o755)
    link = tmp_path / "runtime"
    link.symlink_to(target)
    with pytest.raises(PermissionError, match=f"{link} is a symbolic link to {target}"):
        paths.ensure_private_dir(link)
    assert _mode(target) == 0o755


def test_a_file_in_the_way_is_not_a_folder(tmp_path: Path) -> None:
    (tmp_path / "runtime").write_text("")
    with pytest.raises(NotADirectoryError, match="exists and is not a folder"):
        paths.ensure_private_dir(tmp_path / "runtime")


def test_another_users_folder_is_refused(tmp_path: Path) -> None:
    _as_root()
    folder = tmp_path / "runtime"
    folder.mkdir(mode=0o755)
    os.chown(folder, NOBODY, NOBODY)
    with pytest.raises(PermissionError) as raised:
        paths.ensure_private_dir(folder)
    message = str(raised.value)
    assert f"{folder} belongs to uid {NOBODY}, not to you (uid 0)" in message
    assert "remove it" in message
    assert "XRS_RUNTIME_DIR" in message
    assert _mode(folder) == 0o755  # not ours to change


# -- the status file --------------------------------------------------------------------------


def _status(pid: int, sock: Path, protocol: int = PROTOCOL_VERSION) -> DaemonStatus:
    return DaemonStatus(pid, str(sock), protocol, "0.1.0", T0)


def test_a_status_survives_a_round_trip_in_utc() -> None:
    east = timezone(timedelta(hours=2))
    original = DaemonStatus(42, "/run/user/1/x/daemon.sock", 1, "0.1.0", T0.astimezone(east))
    assert original.started_at.tzinfo is UTC
    assert DaemonStatus.from_json(original.to_json()) == original
    assert DaemonStatus.from_json(original.to_json().encode()) == original


def test_a_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="started_at must be an aware datetime"):
        DaemonStatus(42, "/s", 1, "0.1.0", datetime(2026, 1, 5))  # noqa: DTZ001


GOOD = {"pid": 42, "socket": "/s", "protocol": 1, "version": "0.1.0", "started_at": T0.isoformat()}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "the daemon status is not JSON"),
        ("[1]", "must be a JSON object, not list"),
        ('{"pid": 42}', "lacks socket, protocol, version, started_at"),
        ({**GOOD, "pid": "42"}, "pid must be an integer, not '42'"),
        ({**GOOD, "pid": True}, "pid must be an integer, not True"),
        ({**GOOD, "pid": 0}, "pid must be positive, not 0"),
        ({**GOOD, "protocol": 1.0}, "protocol must be an integer, not 1.0"),
        ({**GOOD, "socket": "daemon.sock"}, "socket must be an absolute path"),
        ({**GOOD, "version": ""}, "version must be a non-empty string"),
        ({**GOOD, "started_at": "2026-01-05T06:00:00"}, "started_at must be an ISO 8601 instant"),
        ({**GOOD, "started_at": 1767592800}, "started_at must be an ISO 8601 instant"),
    ],
)
def test_a_malformed_status_is_refused_with_what_is_wrong(
    text: str | dict[str, object], message: str
) -> None:
    import json

    raw = text if isinstance(text, str) else json.dumps(text)
    with pytest.raises(ValueError, match=message):
        DaemonStatus.from_json(raw)


def test_unknown_keys_are_ignored() -> None:
    import json

    parsed = DaemonStatus.from_json(json.dumps({**GOOD, "features": ["x"]}))
    assert parsed.pid == 42


def test_the_status_is_written_atomically_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    path.write_text("old")
    path.chmod(0o644)
    old = os.umask(0)
    try:
        status.write_status(path, _status(42, tmp_path / "daemon.sock"))
    finally:
        os.umask(old)
    assert _mode(path) == 0o600
    assert DaemonStatus.from_json(path.read_bytes()).pid == 42
    assert sorted(p.name for p in tmp_path.iterdir()) == ["daemon.json"]  # no temporary left


def test_remove_status_removes_only_its_own_pid(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    status.write_status(path, _status(42, tmp_path / "daemon.sock"))
    assert status.remove_status(path, 41) is False
    assert path.exists()
    assert status.remove_status(path, 42) is True
    assert not path.exists()
    assert status.remove_status(path, 42) is False


def test_the_version_is_the_packages() -> None:
    assert status.package_version() == extended_runtime.__version__


# -- find_daemon ------------------------------------------------------------------------------


@pytest.fixture
def runtime(tmp_path: Path) -> Path:
    return paths.ensure_private_dir(tmp_path / "rt")


def _env(runtime: Path) -> dict[str, str]:
    return {"XRS_RUNTIME_DIR": str(runtime)}


@pytest.fixture
def listening(runtime: Path) -> Iterator[Path]:
    """A real socket bound and listening where the daemon's would be."""
    path = runtime / paths.SOCKET_NAME
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        server.listen()
        yield path


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_no_status_file_means_no_daemon(runtime: Path) -> None:
    assert status.find_daemon(_env(runtime)) == (
        None,
        f"no daemon running: there is no status file at {runtime}/daemon.json",
    )


def test_a_dead_pid_is_a_stale_status_file(runtime: Path, listening: Path) -> None:
    pid = _dead_pid()
    status.write_status(runtime / "daemon.json", _status(pid, listening))
    found, reason = status.find_daemon(_env(runtime))
    assert found is None
    assert reason.startswith(f"no daemon running: stale status file of dead pid {pid} at ")


def test_a_live_pid_without_a_socket(runtime: Path) -> None:
    sock = runtime / "daemon.sock"
    status.write_status(runtime / "daemon.json", _status(os.getpid(), sock))
    found, reason = status.find_daemon(_env(runtime))
    assert found is None
    assert reason.startswith(f"the daemon (pid {os.getpid()}) has no socket at {sock}")


def test_a_plain_file_where_the_socket_should_be(runtime: Path) -> None:
    sock = runtime / "daemon.sock"
    sock.write_text("")
    status.write_status(runtime / "daemon.json", _status(os.getpid(), sock))
    found, reason = status.find_daemon(_env(runtime))
    assert found is None
    assert reason.startswith(f"{sock}, named by the daemon status file, is not a socket")


@pytest.mark.parametrize(
    ("offset", "advice"),
    [
        (1, "upgrade extended-runtime here, or restart the daemon with this version"),
        (-1, "restart the daemon so that it runs the version installed now"),
    ],
)
def test_another_protocol_is_refused_with_what_to_do(
    runtime: Path, listening: Path, offset: int, advice: str
) -> None:
    other = status.PROTOCOL_VERSION + offset
    status.write_status(runtime / "daemon.json", _status(os.getpid(), listening, protocol=other))
    found, reason = status.find_daemon(_env(runtime))
    assert found is None
    assert reason == (
        f"the daemon (pid {os.getpid()}, version 0.1.0) speaks protocol {other} but this client "
        f"speaks {status.PROTOCOL_VERSION}: {advice}"
    )


def test_a_live_daemon_with_a_socket_is_reachable(runtime: Path, listening: Path) -> None:
    written = _status(os.getpid(), listening)
    status.write_status(runtime / "daemon.json", written)
    assert status.find_daemon(_env(runtime)) == (
        written,
        f"the daemon (pid {os.getpid()}, version 0.1.0) is reachable at {listening}",
    )


def test_a_status_file_others_can_write_is_refused(runtime: Path, listening: Path) -> None:
    path = runtime / "daemon.json"
    status.write_status(path, _status(os.getpid(), listening))
    path.chmod(0o622)
    found, reason = status.find_daemon(_env(runtime))
    assert found is None
    assert "is writable by other users (mode 0622): refusing it" in reason


def test_a_symlinked_status_file_is_refused(runtime: Path, listening: Path) -> None:
    real = runtime / "real.json"
    status.write_status(real, _status(os.getpid(), listening))
    (runtime / "daemon.json").symlink_to(real)
    found, reason = status.find_daemon(_env(runtime))
    assert found is None
    assert "is a symbolic link, which a daemon never writes: refusing it" in reason


def test_a_status_file_of_another_user_is_refused(runtime: Path, listening: Path) -> None:
    _as_root()
    path = runtime / "daemon.json"
    status.write_status(path, _status(os.getpid(), listening))
    os.chown(path, NOBODY, NOBODY)
    found, reason = status.find_daemon(_env(runtime))
    assert found is None
    assert f"is owned by another user (uid {NOBODY}, you are uid 0): refusing it" in reason


def test_a_socket_of_another_user_is_refused(runtime: Path, listening: Path) -> None:
    _as_root()
    status.write_status(runtime / "daemon.json", _status(os.getpid(), listening))
    os.chown(listening, NOBODY, NOBODY)
    found, reason = status.find_daemon(_env(runtime))
    assert found is None
    assert f"socket {listening} is owned by another user (uid {NOBODY}" in reason


def test_an_unreadable_status_file_says_to_remove_it(runtime: Path) -> None:
    (runtime / "daemon.json").write_text("{half")
    (runtime / "daemon.json").chmod(0o600)
    found, reason = status.find_daemon(_env(runtime))
    assert found is None
    assert reason.startswith(f"the daemon status file {runtime}/daemon.json is unreadable (")
    assert reason.endswith("): remove it and start the daemon")


def test_finding_the_daemon_loads_nothing_heavy() -> None:
    """A client calls `find_daemon` at start-up: no subprocess, metadata, locks or sockets."""
    code = textwrap.dedent(
        """
        import sys
        import extended_runtime
        before = set(sys.modules)
        from extended_runtime._daemon.status import find_daemon
        find_daemon()
        print(" ".join(sorted(set(sys.modules) - before)))
        """
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    heavy = {"subprocess", "importlib.metadata", "fcntl", "socket", "tempfile", "threading"}
    assert heavy.isdisjoint(loaded)
    ours = {name for name in loaded if name.startswith("extended_runtime")}
    assert ours == {
        "extended_runtime._daemon",
        "extended_runtime._daemon.paths",
        "extended_runtime._daemon.status",
    }


# -- one daemon per user ----------------------------------------------------------------------

CLAIM = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from extended_runtime._daemon.status import claim_single_instance
    try:
        claim_single_instance(Path(sys.argv[1]))
    except RuntimeError as error:
        print(error)
        sys.exit(3)
    print("claimed")
    """
)


def _claim_in_a_child(runtime: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CLAIM, str(runtime)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_a_second_daemon_is_refused_until_the_first_lets_go(runtime: Path) -> None:
    held = status.claim_single_instance(runtime)
    try:
        assert _mode(runtime / "daemon.lock") == 0o600
        status.write_status(runtime / "daemon.json", _status(os.getpid(), runtime / "s"))
        refused = _claim_in_a_child(runtime)
        assert refused.returncode == 3, refused.stderr
        assert refused.stdout.startswith(
            f"a daemon already runs for this user (pid {os.getpid()}): it holds "
            f"{runtime}/daemon.lock"
        )
    finally:
        os.close(held)
    claimed = _claim_in_a_child(runtime)
    assert (claimed.returncode, claimed.stdout) == (0, "claimed\n"), claimed.stderr


def test_without_a_status_file_the_lock_names_the_pid(runtime: Path) -> None:
    held = status.claim_single_instance(runtime)
    try:
        pid = os.getpid()
        with pytest.raises(RuntimeError, match=rf"already runs for this user \(pid {pid}\)"):
            status.claim_single_instance(runtime)  # a second descriptor is a second claimant
    finally:
        os.close(held)


def test_the_lock_is_not_inherited_by_launched_programs(runtime: Path) -> None:
    held = status.claim_single_instance(runtime)
    try:
        assert os.get_inheritable(held) is False
    finally:
        os.close(held)


# -- the systemd user unit --------------------------------------------------------------------

ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")


def _verify(unit_file: Path, scratch: Path) -> subprocess.CompletedProcess[str]:
    """`systemd-analyze --user verify`, in a user context of its own.

    In user mode it needs an `XDG_RUNTIME_DIR` (it fails with "Failed to initialize manager: No
    such device or address" without one) and reads the units under `$HOME`, so both point into
    `scratch`; `--man=no` keeps it from looking up man pages.
    """
    runtime = scratch / "analyze-runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("XDG_")
    } | {"XDG_RUNTIME_DIR": str(runtime), "HOME": str(scratch)}
    return subprocess.run(
        [str(ANALYZE), "--user", "--man=no", "verify", str(unit_file)],
        capture_output=True,
        text=True,
        check=False,
        env=environment,
        timeout=60,
    )


def _complaints(result: subprocess.CompletedProcess[str], unit_file: Path) -> list[str]:
    return [line for line in result.stderr.splitlines() if unit_file.name in line]


def test_the_unit_names_its_command_and_restarts() -> None:
    text = unit.unit_text(["/usr/bin/xrs", "daemon"])
    assert "ExecStart=/usr/bin/xrs daemon\n" in text
    for line in ("Type=simple", "Restart=on-failure", "RestartSec=1", "WantedBy=default.target"):
        assert f"\n{line}\n" in text
    for setting in ("PrivateTmp", "ProtectHome", "NoNewPrivileges"):
        assert setting not in text


@needs_analyze
def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    unit_file = tmp_path / unit.UNIT_NAME
    unit_file.write_text(unit.unit_text(unit.daemon_command()))
    result = _verify(unit_file, tmp_path)
    assert result.returncode == 0, result.stderr
    assert _complaints(result, unit_file) == []


#: Characters systemd allows in a program's path but reads specially unless quoted or escaped.
ODD_PROGRAM_NAMES = ["with space", "per%hcent", "dollar$HOME", "semi;colon", "accent-é"]


@needs_analyze
@pytest.mark.parametrize("name", ODD_PROGRAM_NAMES)
def test_systemd_reads_back_an_odd_program_path(tmp_path: Path, name: str) -> None:
    """systemd checks that the program of `ExecStart=` exists and is executable, so a program
    whose name holds the odd characters only passes if systemd unquotes it to the same name."""
    program = tmp_path / "bin" / f"xrs {name}"
    program.parent.mkdir()
    program.symlink_to(sys.executable)
    unit_file = tmp_path / unit.UNIT_NAME
    unit_file.write_text(unit.unit_text([str(program), "daemon"]))
    result = _verify(unit_file, tmp_path)
    assert result.returncode == 0, result.stderr
    assert _complaints(result, unit_file) == []


#: Each word, and how it stands on systemd's command line.
QUOTED = [
    ("daemon", "daemon"),
    ("", '""'),
    ("with space", '"with space"'),
    ('double"quote', '"double\\"quote"'),
    ("single'quote", '"single' + "\\'" + 'quote"'),
    ("back\\slash", '"back\\\\slash"'),
    ("tab\tand\nnewline\x7f", '"tab\\tand\\nnewline\\x7f"'),
    ("100%", "100%%"),
    ("${HOME}", '"$${HOME}"'),
    ("$HOME", "$$HOME"),
    (";", '";"'),
    ("accent-é", '"accent-é"'),
]


@pytest.mark.parametrize(("word", "quoted"), QUOTED)
def test_words_are_quoted_by_systemds_rules(word: str, quoted: str) -> None:
    assert unit.quote_word(word) == quoted


def test_the_program_keeps_its_dollar_signs() -> None:
    assert unit.quote_word("/opt/$x/xrs", program=True) == "/opt/$x/xrs"


@needs_analyze
def test_systemd_accepts_every_quoted_argument(tmp_path: Path) -> None:
    """systemd does not echo the arguments back, but it does complain about unbalanced quotes
    and unknown escapes in them; it finds none."""
    unit_file = tmp_path / unit.UNIT_NAME
    unit_file.write_text(unit.unit_text([sys.executable, *(word for word, _ in QUOTED)]))
    result = _verify(unit_file, tmp_path)
    assert result.returncode == 0, result.stderr
    assert _complaints(result, unit_file) == []


@needs_analyze
def test_verify_does_catch_a_word_left_unquoted(tmp_path: Path) -> None:
    """The check above has teeth: the same program written raw is not found."""
    program = tmp_path / "bin" / "xrs with space"
    program.parent.mkdir()
    program.symlink_to(sys.executable)
    unit_file = tmp_path / unit.UNIT_NAME
    unit_file.write_text(unit.unit_text([str(program)]).replace(f'"{program}"', str(program)))
    result = _verify(unit_file, tmp_path)
    assert result.returncode != 0
    assert "is not executable" in result.stderr


def test_the_command_must_be_an_absolute_argv() -> None:
    with pytest.raises(ValueError, match="must start with an absolute path"):
        unit.unit_text(["xrs", "daemon"])
    with pytest.raises(TypeError, match="not a string"):
        unit.unit_text("/usr/bin/xrs daemon")
    with pytest.raises(ValueError, match="systemd refuses a program path with quotes"):
        unit.unit_text(['/opt/"x"/xrs', "daemon"])


class Systemctl:
    """Records the commands `install_unit` runs and answers with the given exit statuses: no
    user manager can run here, so this stands in for `systemctl --user`."""

    def __init__(self, **answers: int) -> None:
        self.answers = answers
        self.commands: list[list[str]] = []

    def __call__(self, argv: list[str]) -> int:
        self.commands.append(argv)
        return self.answers.get(argv[2].replace("-", "_"), 0)


RELOAD = ["systemctl", "--user", "daemon-reload"]
ENABLE = ["systemctl", "--user", "enable", "--now", "extended-runtime.service"]
DISABLE = ["systemctl", "--user", "disable", "--now", "extended-runtime.service"]


def test_install_writes_the_unit_and_enables_it(tmp_path: Path) -> None:
    systemctl = Systemctl()
    result = unit.install_unit(["/usr/bin/xrs", "daemon"], unit_dir=tmp_path / "u", run=systemctl)
    path = tmp_path / "u" / "extended-runtime.service"
    assert result == unit.InstallResult(
        path, True, f"wrote {path}, enabled and started extended-runtime.service"
    )
    assert path.read_text() == unit.unit_text(["/usr/bin/xrs", "daemon"])
    assert _mode(path) == 0o644
    assert systemctl.commands == [RELOAD, ENABLE]


def test_without_a_user_manager_the_unit_is_written_not_enabled(tmp_path: Path) -> None:
    systemctl = Systemctl(daemon_reload=1)
    result = unit.install_unit(["/usr/bin/xrs", "daemon"], unit_dir=tmp_path, run=systemctl)
    assert result.enabled is False
    assert result.path.is_file()
    assert result.message == (
        f"wrote {result.path} but did not enable it: no systemd user manager answered "
        "(systemctl --user daemon-reload exited with 1); once one runs, enable it with: "
        "systemctl --user daemon-reload && systemctl --user enable --now extended-runtime.service"
    )
    assert systemctl.commands == [RELOAD]


def test_a_failed_enable_is_reported(tmp_path: Path) -> None:
    systemctl = Systemctl(enable=1)
    result = unit.install_unit(["/usr/bin/xrs", "daemon"], unit_dir=tmp_path, run=systemctl)
    assert result.enabled is False
    assert "could not enable it" in result.message
    assert systemctl.commands == [RELOAD, ENABLE]


def test_uninstall_disables_and_removes_the_unit_and_its_link(tmp_path: Path) -> None:
    unit.install_unit(["/usr/bin/xrs", "daemon"], unit_dir=tmp_path, run=Systemctl())
    wants = tmp_path / "default.target.wants"
    wants.mkdir()
    (wants / unit.UNIT_NAME).symlink_to(tmp_path / unit.UNIT_NAME)
    systemctl = Systemctl()
    result = unit.uninstall_unit(unit_dir=tmp_path, run=systemctl)
    assert result.enabled is False
    assert result.message == (
        f"stopped and disabled extended-runtime.service; removed {tmp_path / unit.UNIT_NAME}"
    )
    assert not (tmp_path / unit.UNIT_NAME).exists()
    assert not (wants / unit.UNIT_NAME).is_symlink()
    assert systemctl.commands == [DISABLE, RELOAD]


def test_uninstall_without_a_user_manager_still_removes_the_file(tmp_path: Path) -> None:
    unit.install_unit(["/usr/bin/xrs", "daemon"], unit_dir=tmp_path, run=Systemctl())
    result = unit.uninstall_unit(unit_dir=tmp_path, run=Systemctl(disable=1))
    assert not result.path.exists()
    assert result.message.startswith("could not stop extended-runtime.service")


def test_the_real_runner_reports_a_missing_program() -> None:
    assert unit.run_quietly(["/nonexistent/systemctl"]) == 127
    assert unit.run_quietly([sys.executable, "-c", "raise SystemExit(5)"]) == 5
