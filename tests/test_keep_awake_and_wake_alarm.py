"""Keep-awake is held exactly while a session runs; the wake alarm follows the next start.

DESIGN.md row "Keep-awake" and the "36 h and time" rule that the host arms a wake alarm for a
scheduled start; the test host contract of `host.keep_awake_held`.
"""

from __future__ import annotations

from datetime import timedelta

from extended_runtime import ApplicationState, ExtendedRuntimeSession, SessionState, SessionType
from extended_runtime._core.engine import Engine
from extended_runtime._core.events import KeepAwake, Output
from extended_runtime.testing import VirtualHost

from .helpers import ALARM, MINDFULNESS, SELF_CARE, T0, sec

_S = SessionState


def test_keep_awake_held_exactly_while_a_session_runs(host: VirtualHost) -> None:
    assert not host.keep_awake_held
    alarm = ExtendedRuntimeSession(app=host.app("org.example.sleep", ALARM))
    alarm.start_at(T0 + sec(600))
    assert not host.keep_awake_held, "a scheduled session does not hold keep-awake"
    care = ExtendedRuntimeSession(app=host.app("org.example.care", SELF_CARE))
    care.start()
    assert host.keep_awake_held
    host.advance(599)
    assert host.keep_awake_held
    host.advance(1)
    assert care.state is _S.INVALID
    assert alarm.state is _S.RUNNING
    assert host.keep_awake_held
    alarm.invalidate()
    assert not host.keep_awake_held


def test_keep_awake_never_held_for_a_refused_start(host: VirtualHost) -> None:
    app = host.app("org.example.care", SELF_CARE, state=ApplicationState.INACTIVE)
    inactive = ExtendedRuntimeSession(app=app)
    inactive.start()
    alarm = ExtendedRuntimeSession(app=host.app("org.example.sleep", ALARM))
    alarm.start()
    assert inactive.state is alarm.state is _S.INVALID
    assert not host.keep_awake_held
    host.advance(10)
    assert not host.keep_awake_held


def test_keep_awake_released_when_the_last_session_expires(host: VirtualHost) -> None:
    a = ExtendedRuntimeSession(app=host.app("org.example.a", SELF_CARE))
    b = ExtendedRuntimeSession(app=host.app("org.example.b", MINDFULNESS))
    a.start()
    host.advance(300)
    b.start()
    host.advance(600)
    assert a.state is _S.INVALID
    assert host.keep_awake_held
    host.advance(3000)
    assert b.state is _S.INVALID
    assert not host.keep_awake_held


def test_wake_alarm_armed_at_the_earliest_scheduled_start(host: VirtualHost) -> None:
    assert host.wake_alarm_at is None
    late = ExtendedRuntimeSession(app=host.app("org.example.late", ALARM))
    late.start_at(T0 + timedelta(hours=8))
    assert host.wake_alarm_at == T0 + timedelta(hours=8)
    early = ExtendedRuntimeSession(app=host.app("org.example.early", ALARM))
    early.start_at(T0 + timedelta(hours=2))
    assert host.wake_alarm_at == T0 + timedelta(hours=2)
    early.invalidate()
    assert host.wake_alarm_at == T0 + timedelta(hours=8)
    host.advance(timedelta(hours=8))
    assert late.state is _S.RUNNING
    assert host.wake_alarm_at is None


def test_wake_alarm_follows_the_next_start_after_one_fires(host: VirtualHost) -> None:
    first = ExtendedRuntimeSession(app=host.app("org.example.a", ALARM))
    second = ExtendedRuntimeSession(app=host.app("org.example.b", ALARM))
    first.start_at(T0 + timedelta(hours=1))
    second.start_at(T0 + timedelta(hours=3))
    host.advance(timedelta(hours=1))
    assert first.state is _S.RUNNING
    assert host.wake_alarm_at == T0 + timedelta(hours=3)


def test_the_keep_awake_label_follows_the_running_sessions() -> None:
    """Who and why name the longest-running session and count the rest; an output comes only
    when that changes (a session refused, or one that ends while others run, changes it)."""
    engine = Engine()
    for app in ("org.example.a", "org.example.b"):
        engine.register_app(app, SessionType.MINDFULNESS)

    def labels(outputs: list[Output]) -> list[tuple[bool, str, str]]:
        return [(o.held, o.who, o.why) for o in outputs if isinstance(o, KeepAwake)]

    until = f"until {T0 + timedelta(hours=1):%H:%M:%S} UTC"
    assert labels(engine.start("s1", "org.example.a", T0)) == [
        (True, "org.example.a", f"mindfulness session {until}")
    ]
    assert labels(engine.start("s2", "org.example.a", T0)) == [], "refused: nothing changed"
    later = T0 + sec(60)
    assert labels(engine.start("s3", "org.example.b", later)) == [
        (True, "org.example.a and 1 more", f"mindfulness session {until}; 2 sessions")
    ]
    b_until = f"until {later + timedelta(hours=1):%H:%M:%S} UTC"
    assert labels(engine.invalidate("s1", "org.example.a", later)) == [
        (True, "org.example.b", f"mindfulness session {b_until}")
    ]
    assert labels(engine.invalidate("s3", "org.example.b", later)) == [(False, "", "")]
