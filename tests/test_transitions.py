"""The session state machine, tested on its table directly."""

from __future__ import annotations

import itertools

import pytest

from extended_runtime import InvalidationReason, SessionState
from extended_runtime._core.transitions import (
    REASONS,
    TRANSITIONS,
    IllegalTransition,
    Trigger,
    transition,
)

_S = SessionState
_T = Trigger
_R = InvalidationReason

#: The machine as DESIGN.md and the spec's section 4.6 describe it, written out independently.
EXPECTED: dict[tuple[SessionState, Trigger], SessionState] = {
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


def _name(value: object) -> str:
    if isinstance(value, Trigger):
        return value.value
    if isinstance(value, SessionState):
        return value.name
    return repr(value)


ILLEGAL = [pair for pair in itertools.product(SessionState, Trigger) if pair not in EXPECTED]


def test_table_is_exactly_the_expected_machine() -> None:
    assert TRANSITIONS == EXPECTED


@pytest.mark.parametrize(("state", "trigger"), list(EXPECTED), ids=_name)
def test_every_legal_pair_gives_its_next_state(state: SessionState, trigger: Trigger) -> None:
    assert transition(state, trigger) is EXPECTED[state, trigger]


@pytest.mark.parametrize(("state", "trigger"), ILLEGAL, ids=_name)
def test_every_illegal_pair_raises_naming_the_state(state: SessionState, trigger: Trigger) -> None:
    with pytest.raises(IllegalTransition) as caught:
        transition(state, trigger)
    assert caught.value.state is state
    assert caught.value.trigger is trigger
    assert state.name in str(caught.value)
    assert repr(trigger.value) in str(caught.value)


def test_illegal_pairs_cover_the_rest_of_the_product() -> None:
    assert len(ILLEGAL) + len(EXPECTED) == len(SessionState) * len(Trigger)
    assert len(ILLEGAL) == 4 * 13 - 17


def test_illegal_transition_is_a_runtime_error() -> None:
    assert issubclass(IllegalTransition, RuntimeError)


@pytest.mark.parametrize("trigger", list(Trigger), ids=_name)
def test_invalid_is_terminal(trigger: Trigger) -> None:
    with pytest.raises(IllegalTransition, match="INVALID"):
        transition(SessionState.INVALID, trigger)


def test_nothing_leads_back_to_not_started() -> None:
    assert SessionState.NOT_STARTED not in TRANSITIONS.values()


def test_only_warn_keeps_a_running_session_running() -> None:
    staying = [pair for pair, to in TRANSITIONS.items() if pair[0] is to]
    assert staying == [(SessionState.RUNNING, Trigger.WARN)]


def test_start_schedule_refuse_cancel_apply_only_before_start() -> None:
    for trigger in (Trigger.START, Trigger.SCHEDULE, Trigger.REFUSE, Trigger.CANCEL):
        sources = {state for state, t in TRANSITIONS if t is trigger}
        assert sources == {SessionState.NOT_STARTED}, trigger


def test_only_a_scheduled_session_fires() -> None:
    assert {state for state, t in TRANSITIONS if t is Trigger.FIRE} == {SessionState.SCHEDULED}


def test_reasons_table() -> None:
    assert REASONS == {
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


def test_every_trigger_that_ends_a_session_has_a_reason_entry() -> None:
    ending = {t for (state, t), to in TRANSITIONS.items() if to is SessionState.INVALID}
    assert ending == set(REASONS)


def test_triggers_that_do_not_end_a_session_have_no_reason() -> None:
    for trigger in (Trigger.START, Trigger.SCHEDULE, Trigger.FIRE, Trigger.WARN):
        assert trigger not in REASONS
        assert all(
            to is not SessionState.INVALID for (_, t), to in TRANSITIONS.items() if t is trigger
        )
