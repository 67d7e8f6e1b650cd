"""Random use of three apps on one VirtualHost: the engine's invariants always hold.

The machine drives a self-care app, a physical-therapy app and a smart-alarm app through
random sequences of start / start_at / invalidate, foreground changes, clock advances of up to
two hours, suppression, process exits and launches, alerts, Stop presses, CPU load and the
auto-launch question, and checks after every step:

* at most one running session per app, and keep-awake held exactly while one runs;
* every object's `state` agrees with the engine, and `expiration_date` never changes once set;
* per object, delegate calls come in the order did_start, will_expire, did_invalidate, each at
  most once, at non-decreasing instants, with will_expire 60 s before the expiration and an
  EXPIRED did_invalidate exactly at it;
* once pending calls are delivered, an object whose process is alive has heard exactly one
  did_invalidate if it is INVALID and none otherwise; an object of an exited process hears
  nothing more;
* no delegate or relaunch-handler call is ever made from inside a command;
* no alert plays at or after its session's expiration.

It runs as two test cases: `TestEngineInvariantsFixed` replays the same derandomised runs, and
`TestEngineInvariantsRandom` tries new ones each time and prints how to reproduce a failure.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from extended_runtime import (
    App,
    ApplicationState,
    ErrorCode,
    ExtendedRuntimeSession,
    ExtendedRuntimeSessionDelegate,
    ExtendedRuntimeSessionError,
    HapticType,
    InvalidationReason,
    SessionState,
    SessionType,
    SessionUsageError,
)
from extended_runtime.testing import VirtualHost

from .helpers import T0

APPS = [
    ("org.example.care", SessionType.SELF_CARE),
    ("org.example.pt", SessionType.PHYSICAL_THERAPY),
    ("org.example.sleep", SessionType.SMART_ALARM),
]
ALARM_APP = 2
ORDER = ["did_start", "will_expire", "did_invalidate"]
LEAD = timedelta(seconds=60)

apps = st.integers(0, len(APPS) - 1)
start_dates = st.one_of(
    st.integers(1, 3 * 3600).map(lambda s: timedelta(seconds=s)),  # near future
    st.integers(1, 36 * 3600).map(lambda s: timedelta(seconds=s)),  # future
    st.integers(0, 60).map(lambda s: timedelta(seconds=-s)),  # near past
    st.integers(61, 7200).map(lambda s: timedelta(seconds=-s)),  # far past
    st.integers(36 * 3600 + 1, 48 * 3600).map(lambda s: timedelta(seconds=s)),  # beyond 36 h
    st.sampled_from([timedelta(hours=36), timedelta(seconds=-60), timedelta(0)]),  # boundaries
)
advances = st.one_of(
    st.just(0.0),
    st.integers(0, 300).map(float),
    st.integers(0, 7200).map(float),
    st.sampled_from([0.5, 2.0, 3.0, 9.0, 10.0, 59.0, 60.0]),
)
#: What a repeat handler returns; "default": no handler (3 s); "raise": the handler raises.
repeat_results = st.sampled_from(
    [None, "default", "raise", "garbage", -1.0, 0.0, 0.5, 1.0, 3.0, 30.0, 61.0, math.nan]
)
alert_plans = st.one_of(st.none(), st.tuples(st.sampled_from(HapticType), repeat_results))


@dataclass
class Probe:
    """Whether a command is running, and any call that arrived during one."""

    inside: str | None = None
    violations: list[str] = field(default_factory=list)

    def check(self, what: str) -> None:
        if self.inside is not None:
            self.violations.append(f"{what} called inside {self.inside}")


@dataclass(frozen=True)
class Heard:
    name: str
    at: datetime
    reason: InvalidationReason | None = None


class PropRecorder(ExtendedRuntimeSessionDelegate):
    """Records calls; `on_start` runs inside did_start (an alarm app alerting the user)."""

    def __init__(
        self,
        host: VirtualHost,
        probe: Probe,
        on_start: Callable[[ExtendedRuntimeSession], None] | None = None,
    ) -> None:
        self.host = host
        self.probe = probe
        self.on_start = on_start
        self.calls: list[Heard] = []

    def did_start(self, session: ExtendedRuntimeSession) -> None:
        self.probe.check("did_start")
        self.calls.append(Heard("did_start", self.host.now))
        if self.on_start is not None:
            self.on_start(session)

    def will_expire(self, session: ExtendedRuntimeSession) -> None:
        self.probe.check("will_expire")
        self.calls.append(Heard("will_expire", self.host.now))

    def did_invalidate(
        self,
        session: ExtendedRuntimeSession,
        reason: InvalidationReason,
        error: ExtendedRuntimeSessionError | None,
    ) -> None:
        self.probe.check("did_invalidate")
        assert (error is None) == (reason is not InvalidationReason.ERROR)
        self.calls.append(Heard("did_invalidate", self.host.now, reason))


@dataclass
class Tracked:
    """A session object, its app, and what it has heard (`heard_at_exit`: its process exited)."""

    session: ExtendedRuntimeSession
    recorder: PropRecorder
    app: int
    handed_over: bool
    heard_at_exit: int | None = None
    expiration: datetime | None = None


class SessionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.host = VirtualHost(now=T0)
        self.probe = Probe()
        self.apps: list[App] = [self.host.app(app_id, mode) for app_id, mode in APPS]
        self.alive = [True] * len(APPS)
        self.handler_sets_delegate = [True] * len(APPS)
        self.asked_auto_launch = False
        self.tracked: list[Tracked] = []
        self.delivered = True
        self.alerts_checked = 0
        self.launches_seen = 0
        for index, app in enumerate(self.apps):
            app.on_session(partial(self._handed_over, index))

    # ------------------------------------------------------------------ helpers

    @contextmanager
    def command(self, name: str) -> Iterator[None]:
        self.probe.inside = name
        self.delivered = False
        try:
            yield
        finally:
            self.probe.inside = None

    def _handed_over(self, index: int, session: ExtendedRuntimeSession) -> None:
        self.probe.check("on_session handler")
        assert session.app is self.apps[index]
        if self.handler_sets_delegate[index]:
            recorder = PropRecorder(self.host, self.probe)
            session.delegate = recorder
            self.tracked.append(Tracked(session, recorder, index, True))

    def _new(self, app: int, plan: tuple[HapticType, object] | None = None) -> Tracked:
        on_start = None if plan is None else partial(self._alert, *plan)
        recorder = PropRecorder(self.host, self.probe, on_start)
        session = ExtendedRuntimeSession(app=self.apps[app], delegate=recorder)
        tracked = Tracked(session, recorder, app, False)
        self.tracked.append(tracked)
        return tracked

    def _live(self, data: st.DataObject) -> Tracked | None:
        live = [t for t in self.tracked if t.heard_at_exit is None]
        if not live:
            return None
        return live[data.draw(st.integers(0, len(live) - 1))]

    def _notice_launches(self) -> None:
        """Apps the host launched (auto-launch) since the last look are alive again."""
        for launched_at, app_id in self.host.launches[self.launches_seen :]:
            index = next(i for i, (aid, _) in enumerate(APPS) if aid == app_id)
            assert not self.alive[index], "the host launched an app that was running"
            assert launched_at <= self.host.now
            self.alive[index] = True
        self.launches_seen = len(self.host.launches)

    def _settle(self) -> None:
        # A launch's relaunch handlers run before anything else happens to that process.
        self.host.advance(0)
        self.delivered = True
        self._notice_launches()

    # ------------------------------------------------------------------ rules

    @initialize(
        ask=st.sampled_from([True, True, False]), allow=st.sampled_from([True, True, False])
    )
    def answer_auto_launch(self, ask: bool, allow: bool) -> None:
        """Most runs start with the alarm app's auto-launch question answered."""
        if ask:
            self.request_auto_launch(ALARM_APP, allow)

    @rule(app=apps)
    def start(self, app: int) -> None:
        if not self.alive[app]:
            return
        tracked = self._new(app)
        with self.command("start()"):
            tracked.session.start()
        assert tracked.session.state in (SessionState.RUNNING, SessionState.INVALID)

    def _repeat_handler(self, result: object) -> Callable[[HapticType], Any] | None:
        if result == "default":
            return None

        def handler(played: HapticType) -> Any:
            self.probe.check("repeat handler")
            if result == "raise":
                raise RuntimeError("repeat handler failed")
            return result

        return handler

    def _alert(self, haptic: HapticType, result: object, session: ExtendedRuntimeSession) -> None:
        session.notify_user(haptic, self._repeat_handler(result))

    @rule(app=apps, offset=start_dates)
    def start_at(
        self, app: int, offset: timedelta, plan: tuple[HapticType, object] | None = None
    ) -> None:
        if not self.alive[app]:
            return
        tracked = self._new(app, plan)
        with self.command("start_at()"):
            tracked.session.start_at(self.host.now + offset)
        assert tracked.session.state is not SessionState.NOT_STARTED
        if offset > timedelta(0) and tracked.session.state is not SessionState.INVALID:
            assert tracked.session.state is SessionState.SCHEDULED

    @rule(offset=start_dates, plan=alert_plans)
    def schedule_alarm(self, offset: timedelta, plan: tuple[HapticType, object] | None) -> None:
        self.start_at(ALARM_APP, offset, plan)

    @rule(offset=start_dates, plan=alert_plans)
    def schedule_alarm_and_exit(
        self, offset: timedelta, plan: tuple[HapticType, object] | None
    ) -> None:
        """The user arms the alarm and closes the app."""
        self.start_at(ALARM_APP, offset, plan)
        self.terminate(ALARM_APP)

    @rule(app=apps)
    def invalidate_unstarted(self, app: int) -> None:
        if not self.alive[app]:
            return
        tracked = self._new(app)
        with self.command("invalidate()"):
            tracked.session.invalidate()
        assert tracked.session.state is SessionState.INVALID

    @rule(data=st.data())
    def invalidate(self, data: st.DataObject) -> None:
        if not self.tracked:
            return
        tracked = self.tracked[data.draw(st.integers(0, len(self.tracked) - 1))]
        session = tracked.session
        before = session.state
        exited = tracked.heard_at_exit is not None
        with self.command("invalidate()"):
            try:
                session.invalidate()
            except ExtendedRuntimeSessionError as error:
                assert error.code is ErrorCode.MUST_BE_ACTIVE_TO_START_OR_SCHEDULE
                assert session.session_type is SessionType.SMART_ALARM
                assert session.app.state is not ApplicationState.ACTIVE
                assert session.state is before
                return
            except SessionUsageError:
                assert exited
                assert before is not SessionState.INVALID
                return
        assert session.state is SessionState.INVALID

    @rule(app=apps, state=st.sampled_from([*ApplicationState, ApplicationState.ACTIVE]))
    def set_app_state(self, app: int, state: ApplicationState) -> None:
        if not self.alive[app]:
            return
        with self.command("app.state"):
            self.apps[app].state = state

    @rule(seconds=advances)
    def advance(self, seconds: float) -> None:
        before = self.host.now
        self.host.advance(seconds)
        assert self.host.now == before + timedelta(seconds=seconds)
        self.delivered = True
        self._notice_launches()

    @rule(seconds=st.integers(600, 7200).map(float))
    def advance_a_lot(self, seconds: float) -> None:
        self.advance(seconds)

    @rule(suppressed=st.sampled_from([True, False, False]))
    def set_suppressed(self, suppressed: bool) -> None:
        with self.command("set_suppressed()"):
            self.host.set_suppressed(suppressed)

    @rule(app=apps)
    def terminate(self, app: int) -> None:
        if not self.alive[app]:
            return
        for tracked in self.tracked:
            if tracked.app == app and tracked.heard_at_exit is None:
                tracked.heard_at_exit = len(tracked.recorder.calls)
        launches = len(self.host.launches)
        with self.command("terminate()"):
            self.host.terminate(self.apps[app])
        self.alive[app] = False
        if len(self.host.launches) > launches:
            assert app == ALARM_APP
        self._settle()

    @rule(app=apps, away=st.integers(0, 7200))
    def exit_and_return(self, app: int, away: int) -> None:
        """The app's process exits; later the user opens it again (unless the host did)."""
        self.terminate(app)
        self.advance(float(away))
        self.launch(app)

    @rule(app=apps)
    def launch(self, app: int) -> None:
        if self.alive[app]:
            return
        with self.command("launch()"):
            self.host.launch(self.apps[app])
        self.alive[app] = True
        assert self.apps[app].state is ApplicationState.ACTIVE
        self._settle()

    @rule(data=st.data(), haptic=st.sampled_from(HapticType), result=repeat_results)
    def notify_user(self, data: st.DataObject, haptic: HapticType, result: object) -> None:
        alarms = [
            t
            for t in self.tracked
            if t.heard_at_exit is None
            and t.session.state is SessionState.RUNNING
            and t.session.session_type is SessionType.SMART_ALARM
        ]
        if alarms and data.draw(st.integers(0, 4)) > 0:
            tracked: Tracked | None = alarms[data.draw(st.integers(0, len(alarms) - 1))]
        else:
            tracked = self._live(data)
        if tracked is None:
            return
        with self.command("notify_user()"):
            self._alert(haptic, result, tracked.session)

    @rule(app=apps)
    def stop_alarm(self, app: int) -> None:
        """The user presses Stop for an app (no effect unless it has an alarm session)."""
        target = self.apps[app]
        states = [(t, t.session.state) for t in self.tracked if t.app == app]
        with self.command("stop_alarm()"):
            self.host.stop_alarm(target)
        if app != ALARM_APP:
            assert all(t.session.state is state for t, state in states)

    @rule(app=apps, sets=st.booleans())
    def relaunch_handler_sets_delegate(self, app: int, sets: bool) -> None:
        self.handler_sets_delegate[app] = sets

    @rule(app=apps, allow=st.booleans())
    def request_auto_launch(self, app: int, allow: bool) -> None:
        target = self.apps[app]
        self.host.set_auto_launch_answer(target, allow)
        must_prompt = not self.asked_auto_launch and target.state is not ApplicationState.ACTIVE
        with self.command("request_auto_launch()"):
            try:
                ExtendedRuntimeSession.request_auto_launch_authorization_status(target)
            except ExtendedRuntimeSessionError as error:
                if app != ALARM_APP:
                    assert error.code is ErrorCode.UNSUPPORTED_SESSION_TYPE
                else:
                    assert must_prompt
                    assert error.code is ErrorCode.MUST_BE_ACTIVE_TO_PROMPT
                return
        assert app == ALARM_APP
        assert not must_prompt
        self.asked_auto_launch = True

    @rule(app=apps, cores=st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.5, 3.0]))
    def set_cpu_load(self, app: int, cores: float) -> None:
        self.host.set_cpu_load(self.apps[app], cores)

    # ------------------------------------------------------------------ invariants

    @invariant()
    def no_call_inside_a_command(self) -> None:
        assert self.probe.violations == []

    @invariant()
    def one_running_session_per_app_and_keep_awake(self) -> None:
        running = self.host.engine.running_sessions()
        owners = list(running.values())
        assert len(owners) == len(set(owners))
        assert self.host.keep_awake_held == bool(running)
        assert self.host.engine.scheduled_count() <= 1

    @invariant()
    def state_agrees_with_engine(self) -> None:
        running = self.host.engine.running_sessions()
        for tracked in self.tracked:
            session = tracked.session
            assert (session.state is SessionState.RUNNING) == (session.session_id in running)
            assert session.state is not SessionState.NOT_STARTED

    @invariant()
    def expiration_set_once_running_and_never_changed(self) -> None:
        for tracked in self.tracked:
            session = tracked.session
            if tracked.expiration is None:
                if session.state is SessionState.RUNNING:
                    assert session.expiration_date is not None
                if session.expiration_date is not None:
                    assert session.expiration_date.utcoffset() == timedelta(0)
                    tracked.expiration = session.expiration_date
            else:
                assert session.expiration_date == tracked.expiration

    @invariant()
    def delegate_calls_in_order_once_each_and_on_time(self) -> None:
        now = self.host.now
        for tracked in self.tracked:
            calls = tracked.recorder.calls
            names = [c.name for c in calls]
            positions = [ORDER.index(name) for name in names]
            assert positions == sorted(set(positions)), names
            if "will_expire" in names and not tracked.handed_over:
                assert names[0] == "did_start", names
            times = [c.at for c in calls]
            assert times == sorted(times)
            assert all(at <= now for at in times)
            expiration = tracked.session.expiration_date
            for call in calls:
                # a handed-over session hears what it missed when it is handed over: later
                if call.name == "will_expire":
                    assert expiration is not None
                    assert call.at == expiration - LEAD or tracked.handed_over
                    assert call.at >= expiration - LEAD
                if call.reason is InvalidationReason.EXPIRED:
                    assert expiration is not None
                    assert call.at == expiration or tracked.handed_over
                    assert call.at >= expiration

    @invariant()
    def exactly_one_did_invalidate_while_the_process_lives(self) -> None:
        for tracked in self.tracked:
            heard = tracked.recorder.calls
            if tracked.heard_at_exit is not None:
                assert len(heard) == tracked.heard_at_exit, "an exited process heard a call"
                continue
            count = sum(c.name == "did_invalidate" for c in heard)
            assert count <= 1
            if self.delivered:
                assert count == (tracked.session.state is SessionState.INVALID)

    @invariant()
    def no_alert_at_or_after_expiry(self) -> None:
        expirations = {
            t.session.session_id: t.session.expiration_date
            for t in self.tracked
            if t.session.expiration_date is not None
        }
        alerts = self.host.alerts
        for alert in alerts[self.alerts_checked :]:
            expiration = expirations.get(alert.session_id)
            if expiration is not None:
                assert alert.at < expiration
        self.alerts_checked = len(alerts)


# The machine runs twice from one pytest command: a fixed set of runs, quick and the same
# everywhere, and fresh random runs. (mypy cannot see that hypothesis's `TestCase` class
# property is a class, hence the ignores.)
_COMMON = settings(
    stateful_step_count=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


class TestEngineInvariantsFixed(SessionMachine.TestCase):  # type: ignore[misc, valid-type]
    """The same runs every time: a quick regression check, identical on every machine."""

    settings = settings(_COMMON, max_examples=100, derandomize=True, database=None)


class TestEngineInvariantsRandom(SessionMachine.TestCase):  # type: ignore[misc, valid-type]
    """New runs every time, to find what the fixed ones miss.

    A failure prints a `@reproduce_failure` blob to replay it, and the failing example is kept
    in the local `.hypothesis/` database, so the next run tries it first.
    """

    settings = settings(_COMMON, max_examples=250, derandomize=False, print_blob=True)
