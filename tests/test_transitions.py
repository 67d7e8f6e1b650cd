"""Properties of the session state machine's table that a wrong entry would break.

The table is not copied here: each test states a rule of DESIGN.md or the spec (section 4.6)
about the machine and checks the table obeys it. What reason each ending reports is pinned by
the scenario tests (`test_expiry.py`, `test_invalidate.py`, `test_frontmost.py`, ...).
"""

from __future__ import annotations

import itertools

import pytest

from extended_runtime import ErrorCode, InvalidationReason, SessionState
from extended_runtime._core.transitions import (
    ENDINGS,
    TRANSITIONS,
    Cause,
    IllegalTransition,
    Trigger,
    mermaid,
    transition,
)

_S = SessionState
_T = Trigger


def _name(value: object) -> str:
    if isinstance(value, Trigger):
        return value.value
    if isinstance(value, SessionState):
        return value.name
    return repr(value)


def _sources(trigger: Trigger) -> set[SessionState]:
    return {state for state, t in TRANSITIONS if t is trigger}


def _reachable(start: SessionState) -> set[SessionState]:
    seen, todo = {start}, [start]
    while todo:
        state = todo.pop()
        for (source, _), target in TRANSITIONS.items():
            if source is state and target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


ILLEGAL = [pair for pair in itertools.product(SessionState, Trigger) if pair not in TRANSITIONS]


@pytest.mark.parametrize(("state", "trigger"), ILLEGAL, ids=_name)
def test_every_illegal_pair_raises_naming_the_state_and_trigger(
    state: SessionState, trigger: Trigger
) -> None:
    with pytest.raises(IllegalTransition) as caught:
        transition(state, trigger)
    assert caught.value.state is state
    assert caught.value.trigger is trigger
    assert str(caught.value) == (f"a session in state {state.name} cannot take {trigger.value!r}")


def test_illegal_transition_is_a_runtime_error() -> None:
    assert issubclass(IllegalTransition, RuntimeError)


@pytest.mark.parametrize("trigger", list(Trigger), ids=_name)
def test_invalid_is_terminal(trigger: Trigger) -> None:
    with pytest.raises(IllegalTransition, match="INVALID"):
        transition(SessionState.INVALID, trigger)


def test_every_state_is_reachable_from_not_started() -> None:
    assert _reachable(_S.NOT_STARTED) == set(SessionState)


@pytest.mark.parametrize("state", [_S.NOT_STARTED, _S.SCHEDULED, _S.RUNNING], ids=_name)
def test_the_app_can_end_a_session_in_any_live_state(state: SessionState) -> None:
    """`invalidate()` works on every session not yet INVALID (CANCEL before any start)."""
    app_ends = {
        transition(state, t) for t in (_T.INVALIDATE, _T.CANCEL) if (state, t) in TRANSITIONS
    }
    assert app_ends == {_S.INVALID}


def test_the_user_can_stop_an_alarm_scheduled_or_running() -> None:
    assert _sources(_T.USER_STOP) == {_S.SCHEDULED, _S.RUNNING}


def test_nothing_leads_back_to_not_started() -> None:
    assert _S.NOT_STARTED not in TRANSITIONS.values()


def test_only_warn_keeps_a_session_in_its_state() -> None:
    staying = [pair for pair, to in TRANSITIONS.items() if pair[0] is to]
    assert staying == [(_S.RUNNING, _T.WARN)]


@pytest.mark.parametrize("trigger", list(Trigger), ids=_name)
def test_each_trigger_leads_to_one_state_whatever_the_source(trigger: Trigger) -> None:
    """A trigger means one thing: it cannot end a session from one state and run it from another."""
    targets = {to for (_, t), to in TRANSITIONS.items() if t is trigger}
    assert len(targets) == 1, targets


def test_start_schedule_refuse_cancel_apply_only_before_start() -> None:
    for trigger in (_T.START, _T.SCHEDULE, _T.REFUSE, _T.CANCEL):
        assert _sources(trigger) == {_S.NOT_STARTED}, trigger


def test_only_a_scheduled_session_fires() -> None:
    assert _sources(_T.FIRE) == {_S.SCHEDULED}


@pytest.mark.parametrize("trigger", [_T.WARN, _T.EXPIRE, _T.RESIGN, _T.EXCEED_CPU], ids=_name)
def test_only_a_running_session_warns_expires_resigns_or_exceeds_its_cpu(
    trigger: Trigger,
) -> None:
    """A scheduled session has no expiration date, no foreground to lose and uses no CPU."""
    assert _sources(trigger) == {_S.RUNNING}


def test_every_cause_has_one_ending() -> None:
    assert set(ENDINGS) == set(Cause)


@pytest.mark.parametrize("cause", list(Cause), ids=lambda c: c.name)
def test_every_ending_leads_to_invalid(cause: Cause) -> None:
    """An ending's trigger is legal from some state, and always ends the session."""
    targets = {to for (_, t), to in TRANSITIONS.items() if t is ENDINGS[cause].trigger}
    assert targets == {_S.INVALID}


def test_every_trigger_that_ends_a_session_is_some_cause() -> None:
    ending = {t for (_, t), to in TRANSITIONS.items() if to is _S.INVALID}
    assert ending == {e.trigger for e in ENDINGS.values()}


@pytest.mark.parametrize("cause", list(Cause), ids=lambda c: c.name)
def test_an_error_ending_has_a_code_and_no_other_does(cause: Cause) -> None:
    """Apple: `error` is non-nil exactly when the reason is ERROR (spec 4.4)."""
    ending = ENDINGS[cause]
    assert (ending.code is not None) == (ending.reason is InvalidationReason.ERROR)


def test_every_error_code_but_the_prompt_one_can_end_a_session() -> None:
    """MUST_BE_ACTIVE_TO_PROMPT is raised by the auto-launch question, never an ending."""
    codes = {e.code for e in ENDINGS.values()} - {None}
    assert codes == set(ErrorCode) - {ErrorCode.MUST_BE_ACTIVE_TO_PROMPT}


def test_refusals_are_the_causes_that_never_started() -> None:
    """A refusal (and only one) ends a session from NOT_STARTED; a running session never
    reports SESSION_IN_PROGRESS, which is only ever a refusal."""
    never_started = {c for c, e in ENDINGS.items() if e.trigger in (_T.REFUSE, _T.CANCEL)}
    assert never_started == {
        c for c, e in ENDINGS.items() if _sources(e.trigger) == {_S.NOT_STARTED}
    }
    in_progress = [
        c for c, e in ENDINGS.items() if e.reason is InvalidationReason.SESSION_IN_PROGRESS
    ]
    assert in_progress == [Cause.IN_PROGRESS]
    assert ENDINGS[Cause.IN_PROGRESS].trigger is _T.REFUSE


def test_the_state_diagram_draws_every_transition() -> None:
    lines = mermaid().splitlines()
    assert lines[0] == "stateDiagram-v2"
    edges: dict[tuple[str, str], set[str]] = {}
    for line in lines[1:]:
        head, _, label = line.strip().partition(": ")
        drawn_from, _, drawn_to = head.partition(" --> ")
        edges[drawn_from, drawn_to] = set(label.split(", ")) if label else set()
    for (source, trigger), target in TRANSITIONS.items():
        assert trigger.value in edges[source.name, target.name], (source, trigger)
    drawn = sum(len(triggers) for triggers in edges.values())
    assert drawn == len(TRANSITIONS)
    assert ("[*]", "NOT_STARTED") in edges
    assert ("INVALID", "[*]") in edges
