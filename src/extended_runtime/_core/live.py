"""What the engine holds of live apps and sessions.

Theory
------
The engine keeps a record per known app and per *running* session; an ended session leaves the
engine at once (the store and the audit log keep history), so memory follows live work.

Hundreds of thousands of alarms may wait for their start date, which shapes these records. An
app has at most one live session (Apple's rule: one running-or-scheduled session per app), so a
*waiting* session is held by its app alone, in two slots of the app record: `session_id` and
`start_date`. The app record is itself the entry in the list of starts (`timers.Scheduled`), and
the engine indexes it by the waiting session's id. A waiting alarm thus costs no object of its
own: the app record it needs anyway, one dict entry and one list slot. It becomes a `LiveSession`
when it leaves waiting (it starts, or it ends before its date), and everything a started session
needs (expiry, warning, alerts, CPU baseline) lives in a `Run` created when it starts.

The app record keeps its answers and flags (alive, launchable, approved, alarms disabled, the
auto-launch answer, whether its waiting start lost its process) and its silent-alarm count packed
in one small int: Python shares the ints up to 256, so they cost one slot and no object for any
app with fewer than two silent alarms in a row. Eight slots keep the record at 96 bytes.

Processes: an app is *alive* while a process of it runs. Each process gets a generation number
(`LiveApp.gen`); a session belongs to the generation that created or was handed it. When the
process exits its sessions are *orphans* (`LiveSession.orphaned`) until a later process of the app
is handed them. A waiting start only records that its process exited (`start_orphaned`).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from .enums import ApplicationState, AutoLaunchAuthorizationStatus, SessionState, SessionType
from .timers import Entry, Scheduled

if TYPE_CHECKING:
    from .alerts import AlertRepetition

__all__ = ["ORPHAN_GEN", "LiveApp", "LiveSession", "Run"]

#: The generation of a session whose process is gone and which no later process was handed.
ORPHAN_GEN = -1

_ALIVE = 1
_LAUNCHABLE = 2
_DENIED = 4
_ALARMS_DISABLED = 8
_START_ORPHANED = 16
_AUTO_LAUNCH_SHIFT = 5  # two bits: AutoLaunchAuthorizationStatus 0..2
_AUTO_LAUNCH_MASK = 3 << _AUTO_LAUNCH_SHIFT
_SILENT_SHIFT = 7  # the rest: the silent-alarm count
#: The auto-launch answers by value, read without calling the enum (a hot path).
_AUTO_LAUNCH = {int(status): status for status in AutoLaunchAuthorizationStatus}


class _Flag:
    """A yes/no of the app record, kept as one bit of its `_bits` (`inverted`: the bit says
    no), read and set as a plain attribute."""

    __slots__ = ("bit", "inverted")

    def __init__(self, bit: int, *, inverted: bool = False) -> None:
        self.bit = bit
        self.inverted = inverted

    def __get__(self, app: LiveApp, owner: type | None = None) -> bool:
        return bool(app._bits & self.bit) is not self.inverted

    def __set__(self, app: LiveApp, value: bool) -> None:
        on = bool(value) is not self.inverted
        app._bits = app._bits | self.bit if on else app._bits & ~self.bit


class LiveApp(Scheduled):
    """What the engine knows of one app (its declaration, its process, the user's answers),
    and its waiting session, if it has one (`start_date` set: the app is in the list of starts).
    """

    __slots__ = ("_bits", "app_id", "gen", "mode", "state", "tree")

    def __init__(self, app_id: str, mode: SessionType | None, launchable: bool, tree: str) -> None:
        super().__init__()
        self.app_id = app_id
        self.mode = mode
        self.state = ApplicationState.ACTIVE
        self.gen = 0
        #: The process tree whose CPU time this app's sessions are held to.
        self.tree = tree
        # `session_id` (from `Scheduled`): the id of its live session, waiting or running
        self._bits = _ALIVE | (_LAUNCHABLE if launchable else 0)

    @classmethod
    def kept(
        cls,
        app_id: str,
        mode: SessionType | None,
        launchable: bool,
        answers: tuple[AutoLaunchAuthorizationStatus, bool, bool, int],
    ) -> LiveApp:
        """An app a host kept across its own restart, with no process: its declaration and
        the user's answers (auto-launch, approved, alarms disabled, silent alarms), set in one
        step (a restart makes one per app it knows)."""
        app = cls(app_id, mode, launchable, f"app:{app_id}")
        auto_launch, approved, alarms_disabled, silent = answers
        app.state = ApplicationState.BACKGROUND
        app._bits = (
            (_LAUNCHABLE if launchable else 0)
            | (0 if approved else _DENIED)
            | (_ALARMS_DISABLED if alarms_disabled else 0)
            | int(auto_launch) << _AUTO_LAUNCH_SHIFT
            | silent << _SILENT_SHIFT
        )
        return app

    def may_launch(self) -> bool:
        """Whether the host may launch this app into a session (the user said yes)."""
        return self.launchable and self.auto_launch is AutoLaunchAuthorizationStatus.ACTIVE

    #: A process of the app runs.
    alive = _Flag(_ALIVE)
    #: The host can launch the app.
    launchable = _Flag(_LAUNCHABLE)
    #: The user allows the app's sessions (the bit says "denied": new apps are allowed).
    approved = _Flag(_DENIED, inverted=True)
    #: The app's alarms are disabled after silent alarms.
    alarms_disabled = _Flag(_ALARMS_DISABLED)
    #: The process that scheduled the waiting session has exited since.
    start_orphaned = _Flag(_START_ORPHANED)

    @property
    def auto_launch(self) -> AutoLaunchAuthorizationStatus:
        """The user's answer to the auto-launch question."""
        return _AUTO_LAUNCH[(self._bits & _AUTO_LAUNCH_MASK) >> _AUTO_LAUNCH_SHIFT]

    @auto_launch.setter
    def auto_launch(self, value: AutoLaunchAuthorizationStatus) -> None:
        self._bits = self._bits & ~_AUTO_LAUNCH_MASK | int(value) << _AUTO_LAUNCH_SHIFT

    @property
    def silent(self) -> int:
        """Alarm sessions in a row that ran and ended without alerting."""
        return self._bits >> _SILENT_SHIFT

    @silent.setter
    def silent(self, value: int) -> None:
        self._bits = self._bits & ((1 << _SILENT_SHIFT) - 1) | value << _SILENT_SHIFT

    @property
    def waiting(self) -> bool:
        """The app's live session waits for its start date."""
        return self.start_date is not None


class Run:
    """What only a started session has: its expiry, warning, alerts and CPU baseline."""

    __slots__ = ("alerts", "cpu_baseline", "expires_at", "expiry", "started_at", "warning")

    def __init__(self, started_at: datetime, expires_at: datetime | None) -> None:
        self.started_at = started_at
        self.expires_at = expires_at
        self.expiry: Entry | None = None
        self.warning: Entry | None = None
        self.alerts: AlertRepetition[LiveSession] | None = None
        #: CPU seconds of the app's tree when the session started (`None`: not read yet).
        self.cpu_baseline: float | None = None

    @property
    def alerted(self) -> bool:
        """Whether any alert of this session has played."""
        return self.alerts is not None and self.alerts.alerted


class LiveSession:
    """One session that has left waiting: it runs, or it is ending now."""

    __slots__ = ("app", "gen", "id", "run", "state", "type")

    def __init__(self, session_id: str, app: LiveApp, session_type: SessionType) -> None:
        self.id = session_id
        self.app = app
        self.type = session_type
        self.state = SessionState.NOT_STARTED
        self.gen = app.gen
        self.run: Run | None = None

    @property
    def orphaned(self) -> bool:
        """No live process of the app holds an object for this session."""
        app = self.app
        return not app._bits & _ALIVE or self.gen != app.gen  # the bit, read on every firing

    @property
    def started(self) -> Run:
        """The run of a session that has started (RUNNING, or ended after running)."""
        run = self.run
        assert run is not None, f"session {self.id} has not started"
        return run
