"""Handover: the sub-machine that carries sessions from one process of an app to the next.

Theory
------
Apple's `handle(_:)`: a process of an app may receive a session it did not create, because the
host launched it for a scheduled alarm, or because an earlier process exited while the session
ran or ended. Three pieces of state make that work:

* *missed calls* (`heard`): a delegate event of a session whose current process cannot hear it
  (the session is an orphan, or was handed over and has no delegate yet) is kept, in order;
* *handed over* (`hand_over`, `launched`): a new process of the app is given each such session
  in a `SessionHandedOver` carrying what it missed (a running session's list always begins with
  `did_start`, so a new delegate hears the session from its start). A session stays handed, and
  its missed calls kept, until the process sets a delegate (`acknowledged`); a process that exits
  first loses nothing, and the next one is handed the session again;
* *awaiting a delegate* (`expect_delegate`): a running session handed to a process the host
  launched for it must get a delegate within `relaunch_delegate_timeout`, or the engine ends it
  (`deadline_passed`). This rule is for relaunch only: a session an app created itself is valid
  without a delegate.

Ended sessions whose calls were never heard wait in `undelivered` for the app's next launch, at
most `MAX_UNDELIVERED` per app (the oldest are dropped), so a crashing app cannot grow the engine.
A host that outlives its own restarts keeps them (`backlog`, as plain values) and gives them back
(`restore`), so an ending an app missed reaches it even if the host restarted in between.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from .enums import SessionState, SessionType
from .events import SessionEvent, SessionHandedOver, SessionStarted
from .live import LiveApp, LiveSession, Run
from .policy import Policy
from .timers import Entry, TimerKind, TimerQueue

__all__ = ["MAX_UNDELIVERED", "Handover", "Undelivered"]

#: Ended sessions with unheard calls kept per app until its next launch.
MAX_UNDELIVERED = 32


class Undelivered(NamedTuple):
    """An ended session whose app has not heard its calls, as a host keeps it across its own
    restart: what `hand_over` needs of it, and the calls missed, in order."""

    session_id: str
    session_type: SessionType
    started_at: datetime | None
    expires_at: datetime | None
    missed: tuple[SessionEvent, ...]


class Handover:
    """Missed calls, handed-over sessions and relaunch deadlines, for every app."""

    __slots__ = (
        "_awaiting",
        "_handed",
        "_launches",
        "_missed",
        "_policy",
        "_timers",
        "_undelivered",
    )

    def __init__(self, policy: Policy, timers: TimerQueue[LiveSession]) -> None:
        self._policy = policy
        self._timers = timers
        self._missed: dict[str, list[SessionEvent]] = {}
        self._undelivered: dict[str, list[LiveSession]] = {}
        self._handed: dict[str, LiveSession] = {}
        #: How many times each running session's app was launched into it.
        self._launches: dict[str, int] = {}
        #: Sessions that must get a delegate, with their deadline once handed over.
        self._awaiting: dict[str, Entry | None] = {}

    def heard(self, session: LiveSession, event: SessionEvent) -> None:
        """Keep a delegate event the session's current process will not hear now."""
        missed = self._missed.get(session.id)
        if missed is None:
            if not session.orphaned:
                return
            missed = self._missed[session.id] = []
        missed.append(event)

    def expect_delegate(self, session: LiveSession) -> None:
        """The session goes to a process that must set a delegate in time (relaunch)."""
        self._awaiting.setdefault(session.id, None)

    def hand_over(self, session: LiveSession, now: datetime) -> SessionHandedOver:
        """Give `session` to its app's current process, with what it missed."""
        app, run = session.app, session.run
        session.gen = app.gen
        missed = self._missed.setdefault(session.id, [])
        running = session.state is SessionState.RUNNING
        if run is not None and running and not any(isinstance(e, SessionStarted) for e in missed):
            missed.insert(0, _started(session, run.started_at, run.expires_at))
        self._handed[session.id] = session
        if running and session.id in self._awaiting:
            deadline = now + self._policy.relaunch_delegate_timeout
            self._awaiting[session.id] = self._timers.add(
                deadline, TimerKind.DELEGATE_DEADLINE, session
            )
        return SessionHandedOver(
            at=now,
            app_id=app.app_id,
            session_id=session.id,
            state=session.state,
            session_type=session.type,
            expiration_date=None if run is None else run.expires_at,
            missed=tuple(missed),
        )

    def launched(
        self, app: LiveApp, running: LiveSession | None, now: datetime
    ) -> list[SessionHandedOver]:
        """A new process of `app` runs: hand it every session it has no object for (its ended
        ones with unheard calls, and `running`, its running session, if orphaned)."""
        handed = [self.hand_over(s, now) for s in list(self._undelivered.get(app.app_id, ()))]
        if running is not None and running.gen != app.gen:
            handed.append(self.hand_over(running, now))
        return handed

    def acknowledged(self, session_id: str) -> None:
        """A handed-over session got a delegate: it hears its backlog now; forget it here."""
        session = self._handed.pop(session_id, None)
        self._missed.pop(session_id, None)
        self._timers.cancel(self._awaiting.pop(session_id, None))
        if session is None:
            return
        undelivered = self._undelivered.get(session.app.app_id)
        if undelivered is not None and session in undelivered:
            undelivered.remove(session)
            if not undelivered:
                del self._undelivered[session.app.app_id]

    def launching(self, session: LiveSession) -> bool:
        """The host is to launch the app into `session`: whether it may once more
        (`Policy.max_launches`); counted when it may."""
        count = self._launches.get(session.id, 0)
        if count >= self._policy.max_launches:
            return False
        self._launches[session.id] = count + 1
        return True

    def deadline_passed(self, session: LiveSession) -> bool:
        """The relaunch deadline came: whether the session must end (no delegate was set)."""
        return self._awaiting.pop(session.id, None) is not None

    def launch_failed(self, session: LiveSession) -> bool:
        """The host could not launch the app: whether the host must alert in its place."""
        if session.orphaned and session.id in self._awaiting:
            del self._awaiting[session.id]
            return True
        return False

    def process_exited(self, app: LiveApp) -> None:
        """The app's process is gone: what it was handed is offered again to the next one."""
        for session_id in [sid for sid, s in self._handed.items() if s.app is app]:
            del self._handed[session_id]  # its missed calls stay, for the next process
            self._timers.cancel(self._awaiting.pop(session_id, None))

    def backlog(self, app_id: str) -> tuple[Undelivered, ...]:
        """The app's ended sessions it has not heard, oldest first."""
        return tuple(
            Undelivered(
                session.id,
                session.type,
                None if session.run is None else session.run.started_at,
                None if session.run is None else session.run.expires_at,
                tuple(self._missed.get(session.id, ())),
            )
            for session in self._undelivered.get(app_id, ())
        )

    def restore(self, app: LiveApp, backlog: tuple[Undelivered, ...]) -> None:
        """Give back what `backlog` kept: the sessions wait for the app's next launch again."""
        undelivered = self._undelivered.setdefault(app.app_id, [])
        for kept in backlog[-MAX_UNDELIVERED:]:
            if not kept.missed or any(s.id == kept.session_id for s in undelivered):
                continue
            session = LiveSession(kept.session_id, app, kept.session_type)
            session.state = SessionState.INVALID
            if kept.started_at is not None:
                session.run = Run(kept.started_at, kept.expires_at)
            self._missed[session.id] = list(kept.missed)
            undelivered.append(session)
        if not undelivered:
            del self._undelivered[app.app_id]

    def ended(self, session: LiveSession) -> None:
        """The session is INVALID: keep it for the app's next launch if it has unheard calls."""
        self._timers.cancel(self._awaiting.pop(session.id, None))
        self._handed.pop(session.id, None)
        self._launches.pop(session.id, None)
        if not self._missed.get(session.id):
            self._missed.pop(session.id, None)
            return
        undelivered = self._undelivered.setdefault(session.app.app_id, [])
        undelivered.append(session)
        for dropped in undelivered[:-MAX_UNDELIVERED]:
            self._missed.pop(dropped.id, None)
        del undelivered[:-MAX_UNDELIVERED]


def _started(session: LiveSession, at: datetime, expires: datetime | None) -> SessionStarted:
    """The `did_start` a new delegate of a running session hears first."""
    return SessionStarted(
        at=at,
        app_id=session.app.app_id,
        session_id=session.id,
        state=SessionState.RUNNING,
        session_type=session.type,
        expiration_date=expires,
    )
