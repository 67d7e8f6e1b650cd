"""The embedded host on real time, with a policy of short limits."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import types
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest

from extended_runtime import (
    App,
    ErrorCode,
    ExtendedRuntimeSession,
    ExtendedRuntimeSessionDelegate,
    ExtendedRuntimeSessionError,
    HapticType,
    InvalidationReason,
    SessionState,
    SessionType,
)
from extended_runtime._backends.null import LogEventSink
from extended_runtime._backends.select import Backends
from extended_runtime._core.events import Event
from extended_runtime._hosts.embedded import EmbeddedHost
from extended_runtime.abc import AlertBackend

from .helpers import short_policy

SHORT = short_policy(mindfulness=1.5, self_care=1.5, smart_alarm=3, physical_therapy=30)


class ThreadRecorder(ExtendedRuntimeSessionDelegate):
    """Records each delegate call with the thread that made it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.reason: InvalidationReason | None = None
        self.error: ExtendedRuntimeSessionError | None = None
        self.ended = threading.Event()

    def did_start(self, session: ExtendedRuntimeSession) -> None:
        self.calls.append(("did_start", threading.current_thread().name))

    def will_expire(self, session: ExtendedRuntimeSession) -> None:
        self.calls.append(("will_expire", threading.current_thread().name))

    def did_invalidate(
        self,
        session: ExtendedRuntimeSession,
        reason: InvalidationReason,
        error: ExtendedRuntimeSessionError | None,
    ) -> None:
        self.calls.append(("did_invalidate", threading.current_thread().name))
        self.reason, self.error = reason, error
        self.ended.set()


class RecordingAlerts(AlertBackend):
    """Records alerts: no sound server is used by the embedded host yet (a stand-in)."""

    name = "recording-alerts"

    def __init__(self) -> None:
        self.played: list[HapticType] = []
        self.dismissed = threading.Event()

    def play(self, app_id: str, session_id: str, haptic: HapticType, by_host: bool) -> None:
        self.played.append(haptic)

    def dismiss(self, app_id: str, session_id: str) -> None:
        self.dismissed.set()


@pytest.fixture
def host() -> Iterator[EmbeddedHost]:
    embedded = EmbeddedHost(SHORT)
    yield embedded
    embedded.close()


def _app(host: EmbeddedHost, app_id: str, mode: SessionType) -> App:
    return host.app(app_id, mode)


def test_calls_arrive_in_order_on_the_delegate_thread(host: EmbeddedHost) -> None:
    recorder = ThreadRecorder()
    session = ExtendedRuntimeSession(_app(host, "org.example.m", SessionType.MINDFULNESS))
    session.delegate = recorder
    session.start()
    assert session.state is SessionState.RUNNING
    assert recorder.ended.wait(10)
    assert [name for name, _ in recorder.calls] == ["did_start", "will_expire", "did_invalidate"]
    assert {thread for _, thread in recorder.calls} == {"xrs-delegate"}
    assert recorder.reason is InvalidationReason.EXPIRED
    assert SessionState(session.state) is SessionState.INVALID
    assert not host.engine.keep_awake_held


def test_async_session_hears_its_delegate_on_its_loop(host: EmbeddedHost) -> None:
    app = _app(host, "org.example.async", SessionType.SELF_CARE)
    recorder = ThreadRecorder()

    async def main() -> tuple[InvalidationReason, ExtendedRuntimeSessionError | None]:
        session = ExtendedRuntimeSession(app, recorder)
        async with session.running():
            assert session.state is SessionState.RUNNING
            assert session.expiration_date is not None
            assert host.engine.keep_awake_held
        return await session.wait_invalidated()

    reason, error = asyncio.run(main())
    assert (reason, error) == (InvalidationReason.NONE, None)
    assert [name for name, _ in recorder.calls] == ["did_start", "did_invalidate"]
    assert {thread for _, thread in recorder.calls} == {threading.main_thread().name}


def test_a_session_made_while_another_thread_imports_asyncio_uses_the_delegate_thread(
    host: EmbeddedHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A library loading asyncio lazily on its own thread leaves it half imported for a moment:
    a session made then has no loop of its own thread, and must not fail on the half module."""
    monkeypatch.setitem(sys.modules, "asyncio", types.ModuleType("asyncio"))  # half imported
    recorder = ThreadRecorder()
    session = ExtendedRuntimeSession(_app(host, "org.example.race", SessionType.SELF_CARE))
    monkeypatch.undo()
    session.delegate = recorder
    session.start()
    session.invalidate()
    assert recorder.ended.wait(10)
    assert recorder.calls == [("did_start", "xrs-delegate"), ("did_invalidate", "xrs-delegate")]


def test_async_session_expiring_hears_all_three_calls_on_its_loop(host: EmbeddedHost) -> None:
    app = _app(host, "org.example.async-expiry", SessionType.MINDFULNESS)
    recorder = ThreadRecorder()

    async def main() -> tuple[InvalidationReason, ExtendedRuntimeSessionError | None]:
        session = ExtendedRuntimeSession(app, recorder)
        async with session.running():
            return await session.wait_invalidated()

    loop_thread = threading.current_thread().name
    assert asyncio.run(main()) == (InvalidationReason.EXPIRED, None)
    assert recorder.calls == [
        ("did_start", loop_thread),
        ("will_expire", loop_thread),
        ("did_invalidate", loop_thread),
    ]


def test_running_raises_when_the_session_cannot_start(host: EmbeddedHost) -> None:
    app = _app(host, "org.example.alarm", SessionType.SMART_ALARM)

    async def main() -> None:
        async with ExtendedRuntimeSession(app).running():
            pytest.fail("an alarm cannot start through start()")

    with pytest.raises(ExtendedRuntimeSessionError) as caught:
        asyncio.run(main())
    assert caught.value.code is ErrorCode.UNSUPPORTED_SESSION_TYPE


def test_alarm_alerts_repeat_in_real_time() -> None:
    alerts = RecordingAlerts()
    host = EmbeddedHost(SHORT, backends=Backends(alerts=alerts))
    try:
        app = _app(host, "org.example.wake", SessionType.SMART_ALARM)
        recorder = ThreadRecorder()
        session = ExtendedRuntimeSession(app, recorder)
        session.start_at(host.now)
        assert session.state is SessionState.RUNNING
        answers = iter([(0.1, HapticType.RETRY), (0.1, HapticType.STOP)])
        session.notify_user(HapticType.NOTIFICATION, lambda played: next(answers, None))
        assert recorder.ended.wait(10)
        assert alerts.dismissed.wait(10)  # the alert channel dismisses after the last play
        assert alerts.played == [HapticType.NOTIFICATION, HapticType.RETRY, HapticType.STOP]
        assert recorder.reason is InvalidationReason.EXPIRED
    finally:
        host.close()


def test_a_raising_delegate_does_not_stop_the_host(host: EmbeddedHost) -> None:
    class Raising(ExtendedRuntimeSessionDelegate):
        def did_start(self, session: ExtendedRuntimeSession) -> None:
            raise RuntimeError("app bug")

    app = _app(host, "org.example.bug", SessionType.SELF_CARE)
    first = ExtendedRuntimeSession(app, Raising())
    first.start()
    first.invalidate()
    recorder = ThreadRecorder()
    second = ExtendedRuntimeSession(app, recorder)
    second.start()
    second.invalidate()
    assert recorder.ended.wait(10)
    assert [name for name, _ in recorder.calls] == ["did_start", "did_invalidate"]


def test_cpu_over_budget_ends_the_session_with_real_cpu_time() -> None:
    """Burns real CPU in this process; psutil reads it; the budget is set very low."""
    policy = replace(
        SHORT.with_limits(physical_therapy=30),
        cpu_budget_background=0.05,
        cpu_window=timedelta(seconds=1),
        cpu_sample_interval=timedelta(seconds=0.1),
    )
    host = EmbeddedHost(policy)
    stop = threading.Event()

    def burn() -> None:
        while not stop.is_set():
            sum(range(10_000))

    try:
        recorder = ThreadRecorder()
        session = ExtendedRuntimeSession(_app(host, "org.example.pt", SessionType.PHYSICAL_THERAPY))
        session.delegate = recorder
        session.start()
        burner = threading.Thread(target=burn, daemon=True)
        burner.start()
        assert recorder.ended.wait(20)
        assert recorder.reason is InvalidationReason.ERROR
        assert recorder.error is not None
        assert recorder.error.code is ErrorCode.EXCEEDED_RESOURCE_LIMITS
    finally:
        stop.set()
        host.close()


def test_close_releases_keep_awake() -> None:
    from extended_runtime._backends.null import LoggingKeepAwake

    backend = LoggingKeepAwake()
    host = EmbeddedHost(SHORT, backends=Backends(keep_awake=backend))
    app = host.app("org.example.close", SessionType.PHYSICAL_THERAPY)
    ExtendedRuntimeSession(app).start()
    assert host.settle()  # keep-awake is held on its own channel, just after the call
    assert backend.held
    host.close()
    assert not backend.held


class _CountingLogSink(LogEventSink):
    def __init__(self) -> None:
        super().__init__()
        self.recorded = 0

    def record(self, event: Event) -> None:
        self.recorded += 1
        super().record(event)


@pytest.mark.parametrize(("level", "heard"), [(logging.INFO, False), (logging.DEBUG, True)])
def test_the_log_sink_is_sent_events_only_while_its_level_is_read(
    level: int, heard: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """The default sink logs events at DEBUG: while nobody reads DEBUG, the host does not hand
    it each event on the audit thread."""
    sink = _CountingLogSink()
    caplog.set_level(level, "extended_runtime.events")
    with EmbeddedHost(backends=Backends(sink=sink, cpu=None)) as host:
        session = ExtendedRuntimeSession(host.app("org.example.care", SessionType.SELF_CARE))
        session.start()
        session.invalidate()
        assert host.settle()
    assert (sink.recorded > 0) is heard
    logged = [r for r in caplog.records if r.name == "extended_runtime.events"]
    assert bool(logged) is heard
