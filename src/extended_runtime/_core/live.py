"""What the engine holds of live apps and sessions.

Theory
------
The engine keeps a record per known app and per *live* session (SCHEDULED or RUNNING); an
ended session leaves the engine at once (the store and the audit log keep history), so memory
follows live work. Hundreds of thousands of alarms may wait for their start date, which shapes
these records: a waiting session holds only what waiting needs (its app, id, type, state and its
place in the heap of starts), and everything a started session needs (expiry, warning, alerts,
CPU baseline) lives in a `Run` created when it starts.

Processes: an app is *alive* while a process of it runs. Each process gets a generation number
(`LiveApp.gen`); a session belongs to the generation that created or was handed it. When the
process exits its sessions are *orphans* (`LiveSession.orphaned`) until a later process of the app
is handed them.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from .enums import ApplicationState, AutoLaunchAuthorizationStatus, SessionState, SessionType
from .timers import Entry, Scheduled

if TYPE_CHECKING:
    from .alerts import AlertRepetition

__all__ = ["LiveApp", "LiveSession", "Run"]


class LiveApp:
    """What the engine knows of one app (its declaration, its process, the user's answers)."""

    __slots__ = (
        "alarms_disabled",
        "alive",
        "app_id",
        "approved",
        "auto_launch",
        "gen",
        "launchable",
        "mode",
        "running",
        "scheduled",
        "silent",
        "state",
        "tree",
    )

    def __init__(self, app_id: str, mode: SessionType | None, launchable: bool, tree: str) -> None:
        self.app_id = app_id
        self.mode = mode
        self.state = ApplicationState.ACTIVE
        self.alive = True
        self.gen = 0
        self.launchable = launchable
        #: The process tree whose CPU time this app's sessions are held to.
        self.tree = tree
        self.approved = True
        self.auto_launch = AutoLaunchAuthorizationStatus.UNKNOWN
        self.alarms_disabled = False
        #: Alarm sessions in a row that ran and ended without alerting.
        self.silent = 0
        self.running: LiveSession | None = None
        self.scheduled: LiveSession | None = None

    def may_launch(self) -> bool:
        """Whether the host may launch this app into a session (the user said yes)."""
        return self.launchable and self.auto_launch is AutoLaunchAuthorizationStatus.ACTIVE


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


class LiveSession(Scheduled):
    """One live session, and its own entry in the heap of scheduled starts (`Scheduled`)."""

    __slots__ = ("app", "gen", "id", "run", "state", "type")

    def __init__(self, session_id: str, app: LiveApp, session_type: SessionType) -> None:
        super().__init__()
        self.id = session_id
        self.app = app
        self.type = session_type
        self.state = SessionState.NOT_STARTED
        self.gen = app.gen
        self.run: Run | None = None

    def awaiting_start(self) -> bool:
        """Whether the session still waits for its start date."""
        return self.state is SessionState.SCHEDULED

    @property
    def orphaned(self) -> bool:
        """No live process of the app holds an object for this session."""
        return not self.app.alive or self.gen != self.app.gen

    @property
    def started(self) -> Run:
        """The run of a session that has started (RUNNING, or ended after running)."""
        run = self.run
        assert run is not None, f"session {self.id} has not started"
        return run
