"""The daemon's systemd user unit: its text, and putting it in place or taking it away.

Theory
------
On a systemd machine the daemon is a user service, `extended-runtime.service`: the user's
manager starts it at login (`WantedBy=default.target`), restarts it a second after a crash
(`Restart=on-failure`), and hands it the user's environment, which includes the session bus
(`DBUS_SESSION_BUS_ADDRESS`) and `XDG_RUNTIME_DIR`, where the sound server's socket and the
daemon's own runtime folder are. Desktop sessions import `DISPLAY` and `WAYLAND_DISPLAY` into that
environment too.

The unit has no sandboxing settings, on purpose. Every one of them applies to the daemon's
children as well, and the daemon launches the user's apps: `NoNewPrivileges=` and every seccomp
setting (which a user manager can only apply with it) make setuid and file-capability helpers
fail, and those start snaps (`snap-confine`) and AppImages (`fusermount`); `PrivateTmp=`,
`ProtectHome=` and the other namespace settings hide the user's own files from the apps. If the
daemon one day launches apps as units of their own (`systemd-run --user`), which also lets them
outlive a restart of the daemon, the daemon's unit can be tightened.

`ExecStart=` is written from an argv: each word is quoted by systemd's rules (`systemd.syntax(7)`,
"Quoting"): a word of plain characters stands as it is; any other is put in double quotes with
C escapes for backslashes, quotes and control characters; `%` is doubled everywhere (specifiers),
`$` is doubled in the arguments (environment variables; systemd expands none in the program), and
a `;` is always quoted, never a command separator. The program itself (the first word) must be
an absolute path free of quotes, backslashes and control characters: systemd refuses any other,
however it is quoted. `systemd-analyze verify` holds this quoting to systemd's own reading in
the tests.

`install_unit` writes the file atomically, then asks the user's manager to reload and to enable
and start the unit. The manager's answer to `daemon-reload` tells whether there is one: in a
container, over some `ssh` logins, or on a machine without systemd, there is none, and the file
stays written, not enabled, with the commands to run once there is. Commands go through an
injectable `run` (an argv in, an exit status out), so what is asked can be tested where no
manager runs.
"""

from __future__ import annotations

import string
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .paths import user_unit_dir, write_atomically

__all__ = [
    "UNIT_NAME",
    "InstallResult",
    "Runner",
    "daemon_command",
    "install_unit",
    "quote_word",
    "run_quietly",
    "uninstall_unit",
    "unit_text",
]

UNIT_NAME = "extended-runtime.service"

#: A command run for `install_unit`: an argv in, its exit status out.
Runner = Callable[[list[str]], int]

_PLAIN = frozenset(string.ascii_letters + string.digits + "/_.,:+=@-%$")
_ESCAPES = {
    "\\": "\\\\",
    '"': '\\"',
    "'": "\\'",
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}
_SYSTEMCTL = ["systemctl", "--user"]
_TIMEOUT = 60.0  # seconds for one systemctl call; a manager that takes longer is not answering


@dataclass(frozen=True, slots=True)
class InstallResult:
    """What `install_unit` or `uninstall_unit` did: the unit file, whether the unit is now
    enabled and running, and a sentence for the user."""

    path: Path
    enabled: bool
    message: str


def daemon_command() -> list[str]:
    """The daemon's argv for this installation: this interpreter, so a virtual environment
    stays the one the daemon runs in."""
    return [sys.executable, "-m", "extended_runtime", "daemon"]


def quote_word(word: str, *, program: bool = False) -> str:
    """One word of a systemd command line, so that systemd reads back exactly `word`.

    `program` is for the first word, which systemd does not expand variables in.
    """
    if "\0" in word:
        raise ValueError(f"a command-line word cannot hold a NUL character: {word!r}")
    doubled = word.replace("%", "%%")
    if not program:
        doubled = doubled.replace("$", "$$")
    if doubled and all(character in _PLAIN for character in doubled):
        return doubled
    return '"' + "".join(_escape(character) for character in doubled) + '"'


def _escape(character: str) -> str:
    if character in _ESCAPES:
        return _ESCAPES[character]
    if ord(character) < 0x20 or ord(character) == 0x7F:
        return f"\\x{ord(character):02x}"
    return character


def _unsafe_in_program(character: str) -> bool:
    """What systemd's `string_is_safe` refuses in the program of `ExecStart=`."""
    return character in "\"'\\\x7f" or ord(character) < 0x20


def unit_text(executable: Sequence[str]) -> str:
    """The unit file that runs the daemon as `executable` (a whole argv, e.g.
    `daemon_command()` or `["/usr/bin/xrs", "daemon"]`; its first word an absolute path)."""
    if isinstance(executable, str):
        raise TypeError(f"executable is an argv (a list of words), not a string: {executable!r}")
    argv = list(executable)
    if not argv or not Path(argv[0]).is_absolute():
        raise ValueError(
            f"the daemon's command must start with an absolute path, not {argv[:1]}: "
            f"systemd does not search the user's PATH"
        )
    if any(_unsafe_in_program(character) for character in argv[0]):
        raise ValueError(
            f"systemd refuses a program path with quotes, backslashes or control characters: "
            f"{argv[0]!r}; link the program from a plain path and use that"
        )
    return (
        "[Unit]\n"
        "Description=extended-runtime daemon: extended runtime sessions and smart alarms\n"
        "\n"
        "[Service]\n"
        "Type=simple\n"
        f"ExecStart={_command_line(argv)}\n"
        "Restart=on-failure\n"
        "RestartSec=1\n"
        "# No sandboxing: the daemon launches the user's apps, and they would inherit it.\n"
        "\n"
        "[Install]\n"
        "WantedBy=default.target\n"
    )


def _command_line(argv: list[str]) -> str:
    words = [quote_word(argv[0], program=True), *(quote_word(word) for word in argv[1:])]
    return " ".join(words)


def install_unit(
    executable: Sequence[str],
    *,
    unit_dir: Path | None = None,
    run: Runner | None = None,
) -> InstallResult:
    """Write the unit, then enable and start it if the user's systemd manager answers.

    `unit_dir` defaults to `$XDG_CONFIG_HOME/systemd/user`. Without a manager the file is still
    written, and the result says so and gives the commands to run later.
    """
    run = run or run_quietly
    folder = unit_dir or user_unit_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / UNIT_NAME
    write_atomically(path, unit_text(executable).encode(), 0o644)
    enable = [*_SYSTEMCTL, "enable", "--now", UNIT_NAME]
    reloaded = run([*_SYSTEMCTL, "daemon-reload"])
    if reloaded != 0:
        return InstallResult(
            path,
            False,
            f"wrote {path} but did not enable it: no systemd user manager answered "
            f"(systemctl --user daemon-reload exited with {reloaded}); once one runs, enable "
            f"it with: systemctl --user daemon-reload && {' '.join(enable)}",
        )
    status = run(enable)
    if status != 0:
        return InstallResult(
            path,
            False,
            f"wrote {path} but could not enable it ({' '.join(enable)} exited with {status}); "
            f"see: systemctl --user status {UNIT_NAME}",
        )
    return InstallResult(path, True, f"wrote {path}, enabled and started {UNIT_NAME}")


def uninstall_unit(*, unit_dir: Path | None = None, run: Runner | None = None) -> InstallResult:
    """Stop and disable the unit if the user's manager answers, and remove its file.

    The link that enabling made in `default.target.wants` goes too, even without a manager.
    """
    run = run or run_quietly
    folder = unit_dir or user_unit_dir()
    path = folder / UNIT_NAME
    disabled = run([*_SYSTEMCTL, "disable", "--now", UNIT_NAME])
    existed = path.exists()
    path.unlink(missing_ok=True)
    wanted = folder / "default.target.wants" / UNIT_NAME
    if wanted.is_symlink():
        wanted.unlink()
    if disabled == 0:
        run([*_SYSTEMCTL, "daemon-reload"])
        done = f"stopped and disabled {UNIT_NAME}"
    else:
        done = f"could not stop {UNIT_NAME} (systemctl --user disable --now exited {disabled})"
    removed = f"removed {path}" if existed else f"{path} was not there"
    return InstallResult(path, False, f"{done}; {removed}")


def run_quietly(argv: list[str]) -> int:
    """Run `argv` without a terminal and return its exit status: 127 when the program is
    missing, 124 when it does not finish within a minute (the shell's and `timeout`'s codes)."""
    try:
        completed = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        return 127
    except subprocess.TimeoutExpired:
        return 124
    return completed.returncode
