"""The session state machine, and the ways a session ends, as two tables.

Theory of operation
-------------------
A session has four states (Apple's `WKExtendedRuntimeSessionState`)::

    NOT_STARTED --start()--------> RUNNING --expire / invalidate / resign / ...--> INVALID
         |                            ^
         +--start_at()--> SCHEDULED --+ (its date arrives)
         |                    |
         +--refused / invalidate() before start / cancelled ----------------------> INVALID

`TRANSITIONS` maps *(state, trigger)* to the next state and is the only description of the
machine: the engine calls `transition()` for every change, an unknown pair raises
`IllegalTransition` naming the state and the trigger, and nothing else assigns a state. INVALID is
terminal: no trigger leaves it. The docs draw the state diagram from this table.

`ENDINGS` is the other half: every `Cause` that makes a session INVALID, with the trigger it
fires, the `InvalidationReason` the delegate hears and, for reason ERROR, the `ErrorCode`. The
engine ends a session only by naming a cause, so "which reason and code does this report" is
answered here and nowhere else; the rows follow DESIGN.md's decisions table.
"""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple

from .enums import ErrorCode, InvalidationReason, SessionState

__all__ = [
    "ENDINGS",
    "TRANSITIONS",
    "Cause",
    "Ending",
    "IllegalTransition",
    "Trigger",
    "transition",
]


class Trigger(Enum):
    """What can happen to a session."""

    START = "start"  # start() passed every check
    SCHEDULE = "schedule"  # start_at() passed every check
    REFUSE = "refuse"  # start() or start_at() failed a check
    CANCEL = "cancel"  # invalidate() before any start
    FIRE = "fire"  # a scheduled session's date arrived
    WARN = "warn"  # the limit is near: will_expire
    INVALIDATE = "invalidate"  # the app called invalidate()
    USER_STOP = "user-stop"  # the user pressed Stop (alert, `xrs`)
    EXPIRE = "expire"  # the time limit was reached
    RESIGN = "resign"  # a frontmost session's app left the foreground
    SUPPRESS = "suppress"  # the system does not allow this type now
    EXCEED_CPU = "exceed-cpu"  # the app used more CPU than its budget
    FAIL = "fail"  # any other failure (relaunch without a delegate, app or host gone)


_S = SessionState
_T = Trigger

TRANSITIONS: dict[tuple[SessionState, Trigger], SessionState] = {
    (_S.NOT_STARTED, _T.START): _S.RUNNING,
    (_S.NOT_STARTED, _T.SCHEDULE): _S.SCHEDULED,
    (_S.NOT_STARTED, _T.REFUSE): _S.INVALID,
    (_S.NOT_STARTED, _T.CANCEL): _S.INVALID,
    (_S.SCHEDULED, _T.FIRE): _S.RUNNING,
    (_S.SCHEDULED, _T.INVALIDATE): _S.INVALID,
    (_S.SCHEDULED, _T.USER_STOP): _S.INVALID,
    (_S.SCHEDULED, _T.SUPPRESS): _S.INVALID,
    (_S.SCHEDULED, _T.FAIL): _S.INVALID,
    (_S.RUNNING, _T.WARN): _S.RUNNING,
    (_S.RUNNING, _T.INVALIDATE): _S.INVALID,
    (_S.RUNNING, _T.USER_STOP): _S.INVALID,
    (_S.RUNNING, _T.EXPIRE): _S.INVALID,
    (_S.RUNNING, _T.RESIGN): _S.INVALID,
    (_S.RUNNING, _T.SUPPRESS): _S.INVALID,
    (_S.RUNNING, _T.EXCEED_CPU): _S.INVALID,
    (_S.RUNNING, _T.FAIL): _S.INVALID,
}


class Cause(Enum):
    """Why a session became INVALID: one member per row of `ENDINGS`."""

    # a running or scheduled session ends
    INVALIDATED = "the app called invalidate()"
    USER_STOPPED = "the user pressed Stop"
    EXPIRED = "its time limit was reached"
    RESIGNED = "its frontmost app left the foreground"
    SUPPRESSED = "the system suppressed it"
    EXCEEDED_CPU = "the app used more CPU than its budget"
    APP_EXITED = "the app exited"
    NO_DELEGATE = "the relaunched app set no delegate in time"
    HOST_STOPPED = "its host stopped"
    # a session that never started
    NOT_YET_STARTED = "invalidate() before any start"
    NOT_ACTIVE = "the app is not active"
    NOT_APPROVED = "the app declares no background mode, or the user denied it"
    UNSUPPORTED_TYPE = "the app's type cannot start this way"
    NOT_SCHEDULABLE = "only smart alarms can be scheduled"
    TOO_FAR_AHEAD = "the start date is more than the horizon ahead"
    TOO_FAR_PAST = "the start date is too far in the past"
    ALARMS_DISABLED = "the app's alarms are disabled"
    IN_PROGRESS = "the app already has a session"
    SUPPRESSED_AT_START = "the system does not allow this type now"


class Ending(NamedTuple):
    """How a cause ends a session: the trigger fired, the reason and code reported."""

    trigger: Trigger
    reason: InvalidationReason
    code: ErrorCode | None = None


_R = InvalidationReason
_C = ErrorCode

ENDINGS: dict[Cause, Ending] = {
    Cause.INVALIDATED: Ending(_T.INVALIDATE, _R.NONE),
    Cause.USER_STOPPED: Ending(_T.USER_STOP, _R.NONE),
    Cause.EXPIRED: Ending(_T.EXPIRE, _R.EXPIRED),
    Cause.RESIGNED: Ending(_T.RESIGN, _R.RESIGNED_FRONTMOST),
    Cause.SUPPRESSED: Ending(_T.SUPPRESS, _R.SUPPRESSED_BY_SYSTEM),
    Cause.EXCEEDED_CPU: Ending(_T.EXCEED_CPU, _R.ERROR, _C.EXCEEDED_RESOURCE_LIMITS),
    Cause.APP_EXITED: Ending(_T.FAIL, _R.ERROR, _C.UNKNOWN),
    Cause.NO_DELEGATE: Ending(_T.FAIL, _R.ERROR, _C.UNKNOWN),
    Cause.HOST_STOPPED: Ending(_T.FAIL, _R.ERROR, _C.UNKNOWN),
    Cause.NOT_YET_STARTED: Ending(_T.CANCEL, _R.ERROR, _C.NOT_YET_STARTED),
    Cause.NOT_ACTIVE: Ending(_T.REFUSE, _R.ERROR, _C.MUST_BE_ACTIVE_TO_START_OR_SCHEDULE),
    Cause.NOT_APPROVED: Ending(_T.REFUSE, _R.ERROR, _C.NOT_APPROVED_TO_START_SESSION),
    Cause.UNSUPPORTED_TYPE: Ending(_T.REFUSE, _R.ERROR, _C.UNSUPPORTED_SESSION_TYPE),
    Cause.NOT_SCHEDULABLE: Ending(_T.REFUSE, _R.ERROR, _C.NOT_APPROVED_TO_SCHEDULE),
    Cause.TOO_FAR_AHEAD: Ending(_T.REFUSE, _R.ERROR, _C.SCHEDULED_TOO_FAR_IN_ADVANCE),
    Cause.TOO_FAR_PAST: Ending(_T.REFUSE, _R.ERROR, _C.UNKNOWN),
    Cause.ALARMS_DISABLED: Ending(_T.REFUSE, _R.ERROR, _C.BAR_DISABLED),
    Cause.IN_PROGRESS: Ending(_T.REFUSE, _R.SESSION_IN_PROGRESS),
    Cause.SUPPRESSED_AT_START: Ending(_T.REFUSE, _R.SUPPRESSED_BY_SYSTEM),
}


class IllegalTransition(RuntimeError):
    """A trigger that the session's state does not allow; the state is left unchanged."""

    def __init__(self, state: SessionState, trigger: Trigger) -> None:
        self.state = state
        self.trigger = trigger
        super().__init__(f"a session in state {state.name} cannot take {trigger.value!r}")


def transition(state: SessionState, trigger: Trigger) -> SessionState:
    """The state after `trigger`, or `IllegalTransition` if the table has no such pair."""
    try:
        return TRANSITIONS[state, trigger]
    except KeyError:
        raise IllegalTransition(state, trigger) from None


def mermaid() -> str:
    """The state diagram drawn from `TRANSITIONS`, in Mermaid syntax (for the docs)."""
    lines = ["stateDiagram-v2", "    [*] --> NOT_STARTED"]
    edges: dict[tuple[SessionState, SessionState], list[str]] = {}
    for (source, trigger), target in TRANSITIONS.items():
        edges.setdefault((source, target), []).append(trigger.value)
    for (source, target), triggers in edges.items():
        lines.append(f"    {source.name} --> {target.name}: {', '.join(triggers)}")
    lines.append("    INVALID --> [*]")
    return "\n".join(lines)
