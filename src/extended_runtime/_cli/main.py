"""`xrs`: the command line.

Only `main()` touches `sys.argv` and the exit status; commands are click commands, tested
in-process with click's `CliRunner` and end to end in subprocesses. The module imports nothing of
the engine at import time, so `xrs --help` stays fast.

`xrs run [--type TYPE] [--app-id ID] [--limit SECONDS] -- COMMAND...` runs COMMAND inside a
session on the embedded host: the session starts first (the command is not run if it cannot),
the command runs while the machine is kept awake, the session ends when the command exits, and
the command is stopped (SIGTERM to its process tree, SIGKILL after `--grace` seconds) if the
session ends first. `xrs run` exits with the command's status (128 + N for a signal N).
"""

from __future__ import annotations

import click

__all__ = ["cli", "main"]

#: `xrs run` exits with this when the session cannot start (the command did not run).
EXIT_SESSION_REFUSED = 75
#: ... and with these when the command cannot be executed, as shells do.
EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127

_TYPES = ["self-care", "mindfulness", "physical-therapy"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="extended-runtime", prog_name="xrs")
def cli() -> None:
    """Extended runtime sessions: keep a machine awake for a typed, time-limited task."""


@cli.command(context_settings={"ignore_unknown_options": True})
@click.option(
    "--type",
    "session_type",
    type=click.Choice(_TYPES),
    default="physical-therapy",
    show_default=True,
    help="Session type: sets the time limit (10 min, 1 h, 1 h) and the CPU budget.",
)
@click.option("--app-id", default=None, help="App id to run as [default: xrs.run.COMMAND].")
@click.option(
    "--limit",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="End the session after this many seconds (at most the type's limit).",
)
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=5.0,
    show_default=True,
    help="Seconds between SIGTERM and SIGKILL when the session ends first.",
)
@click.option("-q", "--quiet", is_flag=True, help="Do not print session events.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def run(  # noqa: PLR0917 (click passes options as arguments)
    session_type: str,
    app_id: str | None,
    limit: float | None,
    grace: float,
    quiet: bool,
    command: tuple[str, ...],
) -> None:
    """Run COMMAND inside a session; the machine stays awake until it exits or expires."""
    from .run import RunOptions, run_in_session

    options = RunOptions(session_type, app_id, limit, grace, quiet, command)
    raise SystemExit(run_in_session(options))


def main() -> None:
    """The `xrs` entry point."""
    cli.main(prog_name="xrs")
