"""Backends and sinks that raise or hang never stop a host, on either host.

DESIGN.md's row "A backend fails": an effect that raises or times out (keep-awake, alert, wake
alarm, store, event sink) is logged, recorded as an event, and the engine goes on; sessions
still end on time and keep-awake is still released. Effects run outside the host's lock, so a
hanging backend delays neither a timer nor a command.

The backends here are stand-ins built to fail (a sound server that died, a D-Bus call that never
returns): failing on purpose is the point. Hanging ones block on an `Event` that each test
releases at the end, so no thread is left behind.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from extended_runtime import (
    Backends,
    EmbeddedHost,
    ExtendedRuntimeSession,
    ExtendedRuntimeSessionDelegate,
    ExtendedRuntimeSessionError,
    HapticType,
    InvalidationReason,
    SessionState,
    SessionType,
)
from extended_runtime._backends.memory import MemoryStore
from extended_runtime._core.events import EffectFailed, Event
from extended_runtime._core.records import SessionRecord
from extended_runtime.abc import AlertBackend, EventSink, KeepAwakeBackend
from extended_runtime.testing import VirtualHost

from .helpers import T0, short_policy

SHORT = short_policy(mindfulness=1.5, smart_alarm=30, physical_therapy=30)


class Broken(OSError):
    """What a dead service raises."""


class Gate:
    """Where hanging backends wait; released when the test ends."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def hang(self) -> None:
        self.event.wait(60)


@pytest.fixture
def gate() -> Iterator[Gate]:
    opened = Gate()
    yield opened
    opened.event.set()


class KeepAwake(KeepAwakeBackend):
    """Records the level; raises or hangs on `hold` when told to."""

    name = "test-keep-awake"

    def __init__(self, *, hold_raises: bool = False, hold_hangs: Gate | None = None) -> None:
        self.held = False
        self.released = threading.Event()
        self._raises = hold_raises
        self._hangs = hold_hangs

    def hold(self, who: str, why: str) -> None:
        if self._raises:
            raise Broken("logind is gone")
        if self._hangs is not None:
            self._hangs.hang()
        self.held = True

    def release(self) -> None:
        self.held = False
        self.released.set()


class Alerts(AlertBackend):
    """A sound server that is gone (raises) or stuck (hangs)."""

    name = "test-alerts"

    def __init__(self, *, hangs: Gate | None = None) -> None:
        self._hangs = hangs
        self.tried = 0

    def play(self, app_id: str, session_id: str, haptic: HapticType, by_host: bool) -> None:
        self.tried += 1
        if self._hangs is not None:
            self._hangs.hang()
        raise Broken("the sound server is gone")

    def dismiss(self, app_id: str, session_id: str) -> None:
        raise Broken("the notification server is gone")


class Sink(EventSink):
    """Keeps events; raises or hangs when told to."""

    name = "test-sink"

    def __init__(self, *, raises: bool = False, hangs: Gate | None = None) -> None:
        self.events: list[Event] = []
        self._raises = raises
        self._hangs = hangs

    def record(self, event: Event) -> None:
        if self._hangs is not None:
            self._hangs.hang()
        if self._raises:
            raise Broken("the disk is full")
        self.events.append(event)


class Store(MemoryStore):
    """A store whose disk is full."""

    name = "test-store"

    def save(self, record: SessionRecord) -> None:
        raise Broken("no space left on device")


class Recorder(ExtendedRuntimeSessionDelegate):
    def __init__(self, clock: VirtualHost | EmbeddedHost) -> None:
        self.clock = clock
        self.calls: list[tuple[str, datetime]] = []
        self.reason: InvalidationReason | None = None
        self.ended = threading.Event()

    def did_start(self, session: ExtendedRuntimeSession) -> None:
        self.calls.append(("did_start", self.clock.now))

    def will_expire(self, session: ExtendedRuntimeSession) -> None:
        self.calls.append(("will_expire", self.clock.now))

    def did_invalidate(
        self,
        session: ExtendedRuntimeSession,
        reason: InvalidationReason,
        error: ExtendedRuntimeSessionError | None,
    ) -> None:
        self.calls.append(("did_invalidate", self.clock.now))
        self.reason = reason
        self.ended.set()


def _failures(events: list[Event]) -> list[tuple[str, str, bool]]:
    return [(e.effect, e.message, e.timed_out) for e in events if isinstance(e, EffectFailed)]


# ---------------------------------------------------------------------- the virtual host


def test_virtual_host_raising_backends_record_failures_and_sessions_end_on_time() -> None:
    keep = KeepAwake(hold_raises=True)
    backends = Backends(alerts=Alerts(), keep_awake=keep, sink=Sink(raises=True), store=Store())
    host = VirtualHost(now=T0, backends=backends)
    session = ExtendedRuntimeSession(host.app("org.example.m", SessionType.MINDFULNESS))
    recorder = Recorder(host)
    session.delegate = recorder
    session.start()
    host.advance(timedelta(hours=2))
    assert recorder.calls == [
        ("did_start", T0),
        ("will_expire", T0 + timedelta(minutes=59)),
        ("did_invalidate", T0 + timedelta(hours=1)),
    ]
    assert recorder.reason is InvalidationReason.EXPIRED
    failures = _failures(host.events)
    assert ("keep-awake", "Broken: logind is gone", False) in failures
    assert ("store", "Broken: no space left on device", False) in failures
    assert ("record", "Broken: the disk is full", False) in failures
    assert not host.keep_awake_held
    assert keep.released.is_set()


def test_virtual_host_a_hanging_sink_is_abandoned_and_time_goes_on(gate: Gate) -> None:
    host = VirtualHost(now=T0, backends=Backends(sink=Sink(hangs=gate)), effect_timeout=0.2)
    session = ExtendedRuntimeSession(host.app("org.example.m", SessionType.MINDFULNESS))
    recorder = Recorder(host)
    session.delegate = recorder
    session.start()
    host.advance(timedelta(hours=1))
    assert [name for name, _ in recorder.calls] == ["did_start", "will_expire", "did_invalidate"]
    assert recorder.calls[-1][1] == T0 + timedelta(hours=1)
    assert ("record", "test-sink did not return within 0.2 s", True) in _failures(host.events)


def test_virtual_host_an_alarm_whose_sound_server_is_gone_still_rings_and_ends() -> None:
    alerts = Alerts()
    host = VirtualHost(now=T0, backends=Backends(alerts=alerts))
    app = host.app("org.example.sleep", SessionType.SMART_ALARM)
    alarm = ExtendedRuntimeSession(app)
    alarm.start_at(T0 + timedelta(minutes=1))
    host.advance(60)
    alarm.notify_user(HapticType.NOTIFICATION)
    host.advance(9)
    host.stop_alarm(app)
    host.advance(0)
    assert [a.at for a in host.alerts] == [T0 + timedelta(seconds=s) for s in (60, 63, 66, 69)]
    assert alerts.tried == 4
    failed = [f for f in _failures(host.events) if f[0] == "alert"]
    assert failed == [("alert", "Broken: the sound server is gone", False)] * 4
    assert alarm.state is SessionState.INVALID
    assert not host.engine.alarms_disabled(app.app_id)  # the app alerted: not a silent alarm


# ---------------------------------------------------------------------- the embedded host


def _embedded(backends: Backends, timeout: float = 0.3) -> EmbeddedHost:
    return EmbeddedHost(SHORT, backends=backends, effect_timeout=timeout)


def test_embedded_raising_backends_the_session_ends_on_time_and_the_host_goes_on() -> None:
    sink = Sink()
    keep = KeepAwake(hold_raises=True)
    host = _embedded(Backends(alerts=Alerts(), keep_awake=keep, sink=sink, store=Store()))
    try:
        recorders = []
        for name in ("first", "second"):
            recorder = Recorder(host)
            app = host.app(f"org.example.{name}", SessionType.MINDFULNESS)
            ExtendedRuntimeSession(app, recorder).start()
            assert recorder.ended.wait(10)
            recorders.append(recorder)
        for recorder in recorders:
            assert [n for n, _ in recorder.calls] == ["did_start", "will_expire", "did_invalidate"]
            assert recorder.reason is InvalidationReason.EXPIRED
        assert host.settle()
        failures = _failures(sink.events)
        assert ("keep-awake", "Broken: logind is gone", False) in failures
        assert ("store", "Broken: no space left on device", False) in failures
        assert keep.released.is_set()
        assert not keep.held
    finally:
        host.close()


def test_embedded_commands_return_while_the_sink_hangs(gate: Gate) -> None:
    host = _embedded(Backends(sink=Sink(hangs=gate)), timeout=30)
    try:
        app = host.app("org.example.m", SessionType.PHYSICAL_THERAPY)
        sessions = [ExtendedRuntimeSession(app) for _ in range(3)]

        def commands() -> None:
            for session in sessions:
                session.start()
                session.invalidate()

        worker = threading.Thread(target=commands)
        worker.start()
        worker.join(10)
        assert not worker.is_alive()  # the sink is still stuck on the first event
        assert [s.state for s in sessions] == [SessionState.INVALID] * 3
    finally:
        gate.event.set()
        host.close()


def test_embedded_a_stuck_sound_server_does_not_keep_the_machine_awake(gate: Gate) -> None:
    keep = KeepAwake()
    host = _embedded(Backends(alerts=Alerts(hangs=gate), keep_awake=keep), timeout=30)
    try:
        alarm = ExtendedRuntimeSession(host.app("org.example.sleep", SessionType.SMART_ALARM))
        alarm.start_at(host.now)
        alarm.notify_user(HapticType.NOTIFICATION)  # its play hangs on the alert channel
        started = time.monotonic()
        alarm.invalidate()
        assert time.monotonic() - started < 5
        assert keep.released.wait(10)  # the keep-awake channel is not behind the alerts
        assert not keep.held
    finally:
        gate.event.set()
        host.close()


def test_embedded_a_hold_that_returns_after_the_session_ended_is_released(gate: Gate) -> None:
    keep = KeepAwake(hold_hangs=gate)
    sink = Sink()
    host = _embedded(Backends(keep_awake=keep, sink=sink), timeout=0.2)
    try:
        session = ExtendedRuntimeSession(host.app("org.example.pt", SessionType.PHYSICAL_THERAPY))
        session.start()
        time.sleep(0.5)  # the hold is abandoned after 0.2 s
        session.invalidate()
        assert host.settle()
        assert ("keep-awake", "test-keep-awake did not return within 0.2 s", True) in _failures(
            sink.events
        )
        gate.event.set()  # the stuck hold returns at last: the host releases again
        for _ in range(100):
            if not keep.held and keep.released.is_set():
                break
            time.sleep(0.05)
        assert not keep.held
    finally:
        host.close()


def test_embedded_the_timer_loop_survives_an_error_in_a_round(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    host = _embedded(Backends())
    try:
        advance = host.engine.advance
        failed = threading.Event()

        def failing_once(now: datetime) -> list[object]:
            if not failed.is_set():
                failed.set()
                raise RuntimeError("a bug in one round")
            return advance(now)  # type: ignore[return-value]

        monkeypatch.setattr(host.engine, "advance", failing_once)
        recorder = Recorder(host)
        ExtendedRuntimeSession(host.app("org.example.m", SessionType.MINDFULNESS), recorder).start()
        assert recorder.ended.wait(10)
        assert failed.is_set()
        assert recorder.reason is InvalidationReason.EXPIRED
    finally:
        host.close()
