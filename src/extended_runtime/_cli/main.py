"""`xrs`: the command line.

Only `main()` touches `sys.argv` and the exit status; commands are click commands, tested
in-process with click's `CliRunner` and end to end in subprocesses. The module imports nothing of
the engine at import time, and each command imports its module (`run.py` for `xrs run`) only
when it runs, so `xrs --help` stays fast. Nothing here is imported by the command modules, so
imports go one way: `main` -> `run`, `main` -> `doctor`.

`xrs run [options] -- COMMAND...` runs COMMAND inside a session on the embedded host; `run.py`
holds the flow. Its options are checked here, as click usage errors (exit 2): the app id by
`App`'s rule, the limit against the type's own, the CPU budget by `CpuBudget`. A test may pass
`obj=` a host factory (`run.HostFactory`) to `CliRunner.invoke`; `main()` never does, so the
real `xrs` always runs on a fresh `EmbeddedHost`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

__all__ = ["CpuBudget", "cli", "main"]

if TYPE_CHECKING:  # generic in newer click releases, plain in older ones the package accepts
    _FloatType = click.ParamType[float]
else:
    _FloatType = click.ParamType

_TYPES = ["self-care", "mindfulness", "physical-therapy"]


class CpuBudget(_FloatType):
    """A CPU budget: a positive number of cores, or `none` (any case) for no budget (`inf`)."""

    name = "cores"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, float | int) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str) and value.strip().lower() == "none":
            return math.inf
        else:
            try:
                number = float(str(value))
            except ValueError:
                number = math.nan
        if not math.isfinite(number) or number <= 0:
            self.fail(
                f"{value!r} is not a positive number of cores; use 'none' for no budget",
                param,
                ctx,
            )
        return number


def _check_app_id(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """`--app-id` follows `App`'s rule; a bad one is a usage error, not a traceback."""
    if value is None:
        return None
    from .._api.app import check_app_id

    try:
        return check_app_id(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an app id: use up to 255 letters, digits, '.', '-' or '_', "
            "starting with a letter or digit, reverse-DNS style (e.g. org.example.build)"
        ) from None


def _check_backends(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> tuple[tuple[str, str], ...]:
    """`--backend CAPABILITY=NAME`, each checked against the backends of this machine."""
    from .._backends.select import CHOOSABLE, names

    chosen: list[tuple[str, str]] = []
    for value in values:
        capability, sep, name = value.partition("=")
        if not sep or capability not in CHOOSABLE or not name:
            raise click.BadParameter(
                f"{value!r} is not CAPABILITY=NAME with CAPABILITY one of {', '.join(CHOOSABLE)}",
                ctx,
                param,
            )
        known = names(capability)
        if name not in known:
            raise click.BadParameter(
                f"no {capability} backend is called {name!r}: choose from {', '.join(known)}",
                ctx,
                param,
            )
        chosen.append((capability, name))
    return tuple(chosen)


F = TypeVar("F", bound=Callable[..., Any])


def _backend_option(example: str) -> Callable[[F], F]:
    """`--backend CAPABILITY=NAME`, repeatable, for the commands that make a host."""
    return click.option(
        "--backend",
        "backends",
        multiple=True,
        metavar="CAPABILITY=NAME",
        callback=_check_backends,
        help="Use this backend for keep-awake, wake-alarm or alerts instead of the first that "
        f"works here (names as `xrs doctor` shows them){example}. Repeatable.",
    )


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
@click.option(
    "--app-id",
    default=None,
    callback=_check_app_id,
    help="App id to run as: letters, digits, '.', '-', '_' [default: xrs.run.COMMAND].",
)
@click.option(
    "--limit",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="End the session after this many seconds (at most the type's limit).",
)
@click.option(
    "--cpu-budget",
    type=CpuBudget(),
    default=None,
    metavar="CORES|none",
    help="Average cores the command's process tree may use over 60 s, or 'none' for no "
    "budget [default: 1 for self-care and mindfulness, 0.5 for physical-therapy].",
)
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=5.0,
    show_default=True,
    help="Seconds between SIGTERM and SIGKILL when the session ends first.",
)
@_backend_option("; e.g. keep-awake=log-keep-awake runs without keeping the machine awake")
@click.option(
    "-q",
    "--quiet",
    is_flag=True,
    help="Do not print session events (errors still). With -q and the default type, COMMAND "
    "starts as soon as the machine's sleep block is held, and the session's engine loads only "
    "if COMMAND is still running after 0.2 s: the quick way for scripts and short commands.",
)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_context
def run(  # noqa: PLR0917 (click passes options as arguments)
    ctx: click.Context,
    session_type: str,
    app_id: str | None,
    limit: float | None,
    cpu_budget: float | None,
    grace: float,
    backends: tuple[tuple[str, str], ...],
    quiet: bool,
    command: tuple[str, ...],
) -> None:
    """Run COMMAND inside a session; the machine stays awake until it exits or the session ends.

    The session starts first; if it cannot, COMMAND is not run and xrs says why and exits 75.
    The session ends when COMMAND exits. If the session ends first (it expired, or went over
    its CPU budget), COMMAND's whole process tree gets SIGTERM, then SIGKILL after the grace
    period. SIGTERM, SIGHUP and SIGINT sent to xrs are passed on to COMMAND. xrs exits with
    COMMAND's status (128 + N for signal N, 127 when COMMAND does not exist, 126 when it cannot
    be executed).

    Ctrl-Z on the terminal ends a self-care or mindfulness session (RESIGNED_FRONTMOST) before
    xrs and COMMAND stop with their job; COMMAND is not killed: fg resumes it, without a
    session. A physical-therapy session runs on across Ctrl-Z, bg and fg.

    CPU budget: COMMAND and every process it starts count together, averaged over the last
    60 s. Default: 1 core for self-care and mindfulness, 0.5 core for physical-therapy. Above
    it, the session ends with EXCEEDED_RESOURCE_LIMITS and COMMAND is stopped. Change it with
    --cpu-budget CORES (e.g. --cpu-budget 4), or lift it with --cpu-budget none, for builds and
    other CPU-heavy work.
    """
    from .._core.enums import SessionType
    from .run import RunOptions, run_in_session, session_policy

    kind = SessionType(session_type)
    try:
        policy = session_policy(kind, limit, cpu_budget)
    except ValueError as error:
        raise click.BadParameter(str(error), ctx, param_hint="'--limit'") from None
    options = RunOptions(
        kind, command, policy, app_id=app_id, grace=grace, quiet=quiet, backends=backends
    )
    make_host = ctx.obj if callable(ctx.obj) else None
    ctx.exit(run_in_session(options, make_host))


@cli.command()
def doctor() -> None:
    """Show what this machine can do for sessions: each backend tried, in priority order,
    whether it works here and why. Exits 1 when no keep-awake backend works."""
    from .doctor import diagnose

    text, status = diagnose()
    click.echo(text)
    raise SystemExit(status)


@cli.command()
@click.option("--install", is_flag=True, help="Write and enable a systemd user unit instead.")
@click.option("--uninstall", is_flag=True, help="Disable and remove the systemd user unit.")
@click.option("-v", "--verbose", is_flag=True, help="Log every event, not only what matters.")
@_backend_option("; e.g. alerts=log-alerts logs the alerts instead of playing them")
def daemon(
    install: bool, uninstall: bool, verbose: bool, backends: tuple[tuple[str, str], ...]
) -> None:
    """Run the per-user daemon in the foreground: one host for all of this user's apps, whose
    scheduled sessions survive their process. Stop it with Ctrl-C or SIGTERM; its sessions
    wait for the next start. Apps use it by themselves when it runs (XRS_HOST=embedded
    keeps them in their own process)."""
    from . import control

    if install or uninstall:
        _finish(control.install(uninstall))
    raise SystemExit(control.run_daemon(verbose, backends))


@cli.command()
def status() -> None:
    """Show what runs and what is scheduled in the daemon, with the time left."""
    from . import control

    _finish(control.status())


@cli.command()
@click.argument("session_id")
def stop(session_id: str) -> None:
    """Stop a running or scheduled session (as the alarm's Stop does): it ends with NONE."""
    from . import control

    _finish(control.stop(session_id))


@cli.command()
def pause() -> None:
    """Pause every session: running ones end (SUPPRESSED_BY_SYSTEM), new ones are refused and
    scheduled ones end if their date comes, until `xrs resume`."""
    from . import control

    _finish(control.pause(True))


@cli.command()
def resume() -> None:
    """Let sessions run again after `xrs pause`."""
    from . import control

    _finish(control.pause(False))


@cli.group()
def apps() -> None:
    """The apps the daemon knows: declare one it may launch for its alarms, and say what each
    may do. `xrs apps list` shows them with your answers."""


_MODES = ["self-care", "mindfulness", "physical-therapy", "alarm"]


@apps.command("register", context_settings={"ignore_unknown_options": True})
@click.argument("app_id", callback=_check_app_id)
@click.option("--mode", type=click.Choice(_MODES), required=True, help="Its background mode.")
@click.option(
    "--cwd",
    type=click.Path(exists=True, file_okay=False, resolve_path=True),
    default=None,
    help="The folder the daemon launches it in.",
)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def apps_register(app_id: str, mode: str, cwd: str | None, command: tuple[str, ...]) -> None:
    """Declare APP_ID to the daemon, with the COMMAND that starts it (after `--`): at its
    alarm's date, if it is not running and you allowed auto-launch, the daemon runs COMMAND
    and hands it the session.

    Example: xrs apps register org.example.wake --mode alarm -- python ~/wake.py
    """
    from . import control

    _finish(control.register(app_id, mode, list(command) or None, cwd))


@apps.command("remove")
@click.argument("app_id")
def apps_remove(app_id: str) -> None:
    """Forget APP_ID's registration (its running sessions go on)."""
    from . import control

    _finish(control.forget(app_id))


@apps.command("list")
def apps_list() -> None:
    """Every app the daemon knows, whether it runs, and your answers about it."""
    from . import control

    _finish(control.apps())


def _policy_command(action: str, text: str) -> None:
    @apps.command(action, help=text)
    @click.argument("app_id")
    def command(app_id: str) -> None:
        from . import control

        _finish(control.app_policy(app_id, action))


_policy_command("allow", "Allow APP_ID's sessions and alarms again.")
_policy_command("deny", "Refuse APP_ID's sessions (NOT_APPROVED_TO_START_SESSION).")
_policy_command("disable-alarms", "Refuse APP_ID's alarms (BAR_DISABLED) until `allow`.")
_policy_command("allow-launch", "Let the daemon start APP_ID when its alarm is due.")
_policy_command("deny-launch", "Never let the daemon start APP_ID (its alarms still ring).")
_policy_command("reset", "Forget your answers about APP_ID: allowed, auto-launch asked again.")


@cli.command()
@click.option("--app", "app_id", default=None, help="Only this app's events.")
@click.option(
    "--since",
    default=None,
    metavar="WHEN",
    help="Only events since WHEN: an ISO 8601 instant (2026-12-06T07:00+01:00) or a span back "
    "from now (90s, 30m, 2h, 1d).",
)
@click.option("-n", "--limit", type=click.IntRange(min=1), default=50, show_default=True,
              help="At most this many (the latest).")  # fmt: skip
def log(app_id: str | None, since: str | None, limit: int) -> None:
    """The audit log: every session event the daemon kept, oldest first (it reads the daemon's
    database, so it works whether the daemon runs or not)."""
    from . import audit

    try:
        text, code = audit.show(app_id, since, limit)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="'--since'") from None
    _finish((text, code))


def _finish(result: tuple[str, int]) -> None:
    text, code = result
    click.echo(text, err=code != 0)
    raise SystemExit(code)


def main() -> None:
    """The `xrs` entry point."""
    cli.main(prog_name="xrs")
