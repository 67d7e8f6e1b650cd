"""Timers due at the same instant: ends (expiry) first, then starts, then warnings, then alerts.

DESIGN.md row "Timers due at the same instant". The first three tests arm the later-ranked
timer first, so insertion order alone would give the wrong answer.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from extended_runtime import ExtendedRuntimeSession, HapticType, InvalidationReason, Policy
from extended_runtime.testing import VirtualHost

from .helpers import ALARM, SELF_CARE, T0, Call, Recorder, ended, open_session, sec


def test_timers_due_at_same_instant_end_before_start(host: VirtualHost) -> None:
    """The start is armed first, so insertion order alone would start first."""
    journal: list[tuple[str, Call]] = []
    alarm, _ = open_session(host, host.app("org.example.sleep", ALARM), "alarm", journal)
    alarm.start_at(T0 + sec(600))
    care, _ = open_session(host, host.app("org.example.care", SELF_CARE), "care", journal)
    care.start()
    host.advance(600)
    assert [(label, call.name, call.at) for label, call in journal][-2:] == [
        ("care", "did_invalidate", T0 + sec(600)),
        ("alarm", "did_start", T0 + sec(600)),
    ]


def test_timers_due_at_same_instant_start_before_warning(host: VirtualHost) -> None:
    journal: list[tuple[str, Call]] = []
    care, _ = open_session(host, host.app("org.example.care", SELF_CARE), "care", journal)
    care.start()
    alarm, _ = open_session(host, host.app("org.example.sleep", ALARM), "alarm", journal)
    alarm.start_at(T0 + sec(540))
    host.advance(540)
    assert [(label, call.name, call.at) for label, call in journal][-2:] == [
        ("alarm", "did_start", T0 + sec(540)),
        ("care", "will_expire", T0 + sec(540)),
    ]


def test_timers_due_at_same_instant_warning_before_alert() -> None:
    """An alert timer armed before a warning due at the same instant still comes after it."""
    host = VirtualHost(now=T0, policy=Policy().with_limits(self_care=120))
    order: list[tuple[str, datetime]] = []
    alarm = ExtendedRuntimeSession(app=host.app("org.example.sleep", ALARM))
    alarm.start_at(T0)

    def every_minute(haptic: HapticType) -> float:
        order.append(("repeat", host.now))
        return 60.0

    alarm.notify_user(HapticType.NOTIFICATION, every_minute)
    host.advance(0)

    class Warned(Recorder):
        def will_expire(self, session: ExtendedRuntimeSession) -> None:
            order.append(("will_expire", host.now))

    care = ExtendedRuntimeSession(app=host.app("org.example.care", SELF_CARE))
    care.delegate = Warned(host)
    care.start()
    host.advance(60)
    assert order == [
        ("repeat", T0),
        ("will_expire", T0 + sec(60)),
        ("repeat", T0 + sec(60)),
    ]
    assert [a.at for a in host.alerts] == [T0, T0 + sec(60)]


def test_timers_due_at_same_instant_end_before_alert(host: VirtualHost) -> None:
    session, rec = open_session(host, host.app("org.example.sleep", ALARM))
    session.start_at(T0)
    session.notify_user(HapticType.DIRECTION_UP, lambda _: 60.0)
    host.advance(timedelta(hours=1))
    times = [a.at for a in host.alerts]
    assert times == [T0 + sec(60 * i) for i in range(30)]
    assert rec.calls[-1] == ended(InvalidationReason.EXPIRED, T0 + sec(1800))


def test_timers_due_at_same_instant_end_before_host_alert(host: VirtualHost) -> None:
    """The host's own 3 s alert for an exited app stops at expiry: 1797 s is the last."""
    app = host.app("org.example.sleep", ALARM)
    session = ExtendedRuntimeSession(app=app)
    session.start_at(T0 + sec(60))
    host.terminate(app)
    host.advance(timedelta(hours=1))
    times = [a.at for a in host.alerts]
    assert len(times) == 600
    assert times[-1] == T0 + sec(60 + 1797)
    assert all(a.by_host for a in host.alerts)
