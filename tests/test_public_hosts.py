"""What users reached for: public hosts with a policy, and `with session.running()`.

DESIGN.md: hosts are public and alike: `VirtualHost(now=..., policy=...)` and
`EmbeddedHost(policy=...)` each offer `.app(app_id, mode, ...)`; `Policy` is public so a user can
shorten a demo or tighten a budget without private calls. `with session.running():` and
`async with session.running():` both start, wait until running, invalidate on exit, and raise
`ExtendedRuntimeSessionError` if the start fails.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

import extended_runtime
from extended_runtime import (
    App,
    EmbeddedHost,
    ErrorCode,
    ExtendedRuntimeSession,
    ExtendedRuntimeSessionError,
    InvalidationReason,
    Policy,
    SessionState,
    SessionType,
    SessionUsageError,
)
from extended_runtime.testing import MockClock, VirtualHost

from .helpers import T0


def test_hosts_and_policy_are_public_names() -> None:
    for name in ("EmbeddedHost", "Policy", "Backends"):
        assert name in extended_runtime.__all__
        assert getattr(extended_runtime, name).__name__ == name


def test_an_embedded_host_with_a_policy_gives_its_sessions_those_limits() -> None:
    clock = MockClock(T0)
    with EmbeddedHost(policy=Policy().with_limits(mindfulness=90), clock=clock) as host:
        session = ExtendedRuntimeSession(host.app("org.example.demo", SessionType.MINDFULNESS))
        session.start()
        assert session.expiration_date == T0 + timedelta(seconds=90)
        clock.jump(90)
        assert host.settle()
        assert session.invalidation_reason is InvalidationReason.EXPIRED
    assert host.closed


def test_an_app_of_one_host_cannot_move_to_another() -> None:
    with EmbeddedHost() as first, EmbeddedHost() as second:
        app = first.app("org.example.a", SessionType.MINDFULNESS)
        with pytest.raises(SessionUsageError, match="already bound to another host"):
            App(app.app_id, SessionType.MINDFULNESS, host=first)._bind(second)
        assert app.host is first


def test_apps_with_the_same_declaration_share_state_and_handlers() -> None:
    host = VirtualHost(now=T0)
    first = host.app("org.example.sleep", SessionType.SMART_ALARM)
    second = App("org.example.sleep", SessionType.SMART_ALARM, host=host)
    second.on_session(print)
    first.state = extended_runtime.ApplicationState.BACKGROUND
    assert second.state is extended_runtime.ApplicationState.BACKGROUND
    assert first.record is second.record
    assert first.record.handlers == [print]


@pytest.mark.parametrize("asynchronous", [False, True], ids=["with", "async-with"])
def test_running_starts_and_ends_the_session(asynchronous: bool) -> None:
    host = VirtualHost(now=T0)
    session = ExtendedRuntimeSession(host.app("org.example.m", SessionType.MINDFULNESS))

    async def use_async() -> SessionState:
        async with session.running():
            return session.state

    if asynchronous:
        inside = asyncio.run(use_async())
    else:
        with session.running():
            inside = session.state
    assert inside is SessionState.RUNNING
    assert session.state is SessionState.INVALID
    assert session.invalidation_reason is InvalidationReason.NONE


@pytest.mark.parametrize("asynchronous", [False, True], ids=["with", "async-with"])
def test_running_raises_the_reason_a_start_failed(asynchronous: bool) -> None:
    host = VirtualHost(now=T0)
    session = ExtendedRuntimeSession(host.app("org.example.sleep", SessionType.SMART_ALARM))

    async def use_async() -> None:
        async with session.running():
            pytest.fail("an alarm cannot start through start()")

    with pytest.raises(ExtendedRuntimeSessionError) as caught:
        if asynchronous:
            asyncio.run(use_async())
        else:
            with session.running():
                pytest.fail("an alarm cannot start through start()")
    assert caught.value.code is ErrorCode.UNSUPPORTED_SESSION_TYPE
    assert caught.value.message == (
        "a smart-alarm session must be scheduled with start_at(), not start()"
    )


def test_running_raises_for_a_refusal_without_an_error_code() -> None:
    host = VirtualHost(now=T0)
    app = host.app("org.example.m", SessionType.MINDFULNESS)
    ExtendedRuntimeSession(app).start()
    with (
        pytest.raises(ExtendedRuntimeSessionError) as caught,
        ExtendedRuntimeSession(app).running(),
    ):
        pytest.fail("one session at a time")
    assert caught.value.reason is InvalidationReason.SESSION_IN_PROGRESS
    assert "did not run: SESSION_IN_PROGRESS" in caught.value.message


def test_an_exception_inside_running_still_ends_the_session() -> None:
    host = VirtualHost(now=T0)
    session = ExtendedRuntimeSession(host.app("org.example.m", SessionType.MINDFULNESS))
    with pytest.raises(KeyError), session.running():
        raise KeyError("the app's own bug")
    assert session.state is SessionState.INVALID
    assert not host.keep_awake_held


def test_the_embedded_host_keeps_no_session_records_unless_given_a_store() -> None:
    """Nothing in an app's process reads them, and a long-lived app would keep them all."""
    from extended_runtime._backends.memory import MemoryStore

    with EmbeddedHost() as host:
        assert host.backends.store is None
    store = MemoryStore()
    with EmbeddedHost(backends=extended_runtime.Backends(store=store)) as host:
        session = ExtendedRuntimeSession(host.app("org.example.m", SessionType.MINDFULNESS))
        session.start()
        session.invalidate()
        assert host.settle()
        record = store.get(session.session_id)
        assert record is not None
        assert record.reason is InvalidationReason.NONE
