"""The session state machine, as a table.

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

`REASONS` says which `InvalidationReason` a trigger that ends a session reports. Triggers mapped to
`None` there carry their reason with them (a refused start, or an error with its code).
"""

from __future__ import annotations

from enum import Enum

from .enums import InvalidationReason, SessionState

__all__ = ["REASONS", "TRANSITIONS", "IllegalTransition", "Trigger", "transition"]


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
    FAIL = "fail"  # any other failure (relaunch without a delegate, app gone)


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

_R = InvalidationReason

REASONS: dict[Trigger, InvalidationReason | None] = {
    _T.REFUSE: None,
    _T.CANCEL: _R.ERROR,
    _T.INVALIDATE: _R.NONE,
    _T.USER_STOP: _R.NONE,
    _T.EXPIRE: _R.EXPIRED,
    _T.RESIGN: _R.RESIGNED_FRONTMOST,
    _T.SUPPRESS: _R.SUPPRESSED_BY_SYSTEM,
    _T.EXCEED_CPU: _R.ERROR,
    _T.FAIL: _R.ERROR,
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
