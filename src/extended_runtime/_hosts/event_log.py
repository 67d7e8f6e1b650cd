"""What the log says of the engine's events, in the app's own process and in the daemon's.

Theory
------
DESIGN.md: a session that fails while nobody listens must still say why. So every refusal and
error ending is logged at WARNING (logger `extended_runtime`) with its reason and message, and
so are a start that came late (its date passed while the machine slept, the process was stopped
or the clock was set), a request the engine ignored, an alarm that ended without alerting and
the disabling of an app's alarms. An ending as asked or on time is logged at DEBUG only.

The embedded host logs them in its own process, on its audit channel. With the daemon the same
lines are written twice over: by the daemon (its journal is where the user looks) and by the
app's client as each pushed session event arrives, so an app reads in its own log what it would
read on the embedded host. `logs` tells whether a line would be written at the logger's level
now, so an event nobody would read costs nothing more.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from .._core.events import (
    AlarmEndedSilently,
    AlarmsDisabled,
    Event,
    RequestIgnored,
    SessionInvalidated,
    SessionStarted,
)

__all__ = ["LATE_START", "LOGGED", "log_event", "logs"]

log = logging.getLogger("extended_runtime")

#: The events that may be logged (see `log_event`).
LOGGED = (SessionInvalidated, RequestIgnored, AlarmEndedSilently, AlarmsDisabled)
#: A scheduled start this late is logged: its instant passed while the machine slept, the
#: process was stopped, or the wall clock was set past it.
LATE_START = timedelta(seconds=1)


def logs(event: Event) -> bool:
    """Whether `log_event` would write a line for `event` at the logger's level now: an
    event nobody would read costs no hand-off to the audit channel."""
    if _late(event):
        return log.isEnabledFor(logging.WARNING)
    if not isinstance(event, LOGGED):
        return False
    quiet = isinstance(event, SessionInvalidated) and event.error is None and not event.refused
    return log.isEnabledFor(logging.DEBUG if quiet else logging.WARNING)


def _late(event: Event) -> bool:
    return isinstance(event, SessionStarted) and event.lateness >= LATE_START


def log_event(event: Event) -> None:
    """Refusals and error endings at WARNING, so an app without a delegate still learns why."""
    if isinstance(event, SessionInvalidated):
        _log_invalidated(event)
    elif isinstance(event, SessionStarted) and _late(event):
        log.warning(
            "session %s of %s started %s late, at %s: its date passed while the machine slept, "
            "the process was stopped or the clock was set",
            event.session_id,
            event.app_id,
            event.lateness,
            event.at.isoformat(timespec="milliseconds"),
        )
    elif isinstance(event, RequestIgnored):
        log.warning("%s ignored for session %s: %s", event.request, event.session_id, event.message)
    elif isinstance(event, AlarmEndedSilently):
        log.warning(
            "the alarm of %s (session %s) ended without alerting the user (%d in a row)",
            event.app_id,
            event.session_id,
            event.count,
        )
    elif isinstance(event, AlarmsDisabled):
        log.warning(
            "alarms of %s are disabled: %d alarms in a row ran without alerting the user; "
            "its alarms fail with BAR_DISABLED until the user allows them again",
            event.app_id,
            event.count,
        )


def _log_invalidated(event: SessionInvalidated) -> None:
    error = event.error
    detail = f": {error}" if error is not None else ""
    if event.refused:
        log.warning(
            "session %s of %s could not start: %s%s",
            event.session_id,
            event.app_id,
            event.reason.name,
            detail,
        )
    elif error is not None:
        log.warning(
            "session %s of %s ended: %s%s",
            event.session_id,
            event.app_id,
            event.reason.name,
            detail,
        )
    else:  # an ending as asked or on time: a daemon's audit log keeps it, `-v` shows it
        log.debug("session %s of %s ended: %s", event.session_id, event.app_id, event.reason.name)
