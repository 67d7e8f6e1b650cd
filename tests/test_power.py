"""Suspend, shutdown, power saving and the battery, on real embedded hosts and real services.

The suspend and shutdown signals are the real systemd-logind's: it runs in a private mount
namespace that offers "freeze mem" in /sys/power/state, and hands the suspend or power-off job
to a test double of systemd's manager (`tests/doubles/systemd1.py`), which reports the job done
without suspending or powering off anything. So `Suspend(false)` and `PowerOff(false)` make
logind emit `PrepareForSleep` / `PrepareForShutdown` (true, then false) and honour our delay
lock, as on a laptop. The power profile is the real power-profiles-daemon's, set with
`powerprofilesctl` and set back to `balanced`.

No battery exists here, so the low-battery rule runs against a stand-in UPower
(`tests/doubles/upower.py`) under UPower's real name on a private bus the test starts; the
backend is the real one, given that bus.

Every signal reaches every process on the system bus: the tests keep the shutdown and
power-saver states as short as they can, and leave logind, the profile and the services as they
found them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from jeepney import HeaderFields, MatchRule

from extended_runtime import (
    EmbeddedHost,
    ExtendedRuntimeSession,
    ExtendedRuntimeSessionDelegate,
    InvalidationReason,
    SessionState,
    SessionType,
)
from extended_runtime._backends.linux.dbus import Bus, method
from extended_runtime._backends.linux.logind import inhibit, list_inhibitors
from extended_runtime._backends.linux.power import Battery, PowerProfiles, UPowerBattery
from extended_runtime._backends.linux.sleep import WHO, LogindShutdown, LogindSleep
from extended_runtime._backends.linux.wakealarm import TimerfdWakeAlarm
from extended_runtime._backends.select import Backends, survey
from extended_runtime._core.conditions import Conditions

from . import services
from .doubles.upower import PrivateBus, StandInUPower
from .helpers import eventually, short_policy

ROOT = Path(__file__).resolve().parent.parent
LOGIND = ("org.freedesktop.login1", "/org/freedesktop/login1", "org.freedesktop.login1.Manager")
SHORT = short_policy(mindfulness=30, self_care=30, physical_therapy=30, smart_alarm=30)
_R = InvalidationReason


class Ends(ExtendedRuntimeSessionDelegate):
    """Keeps how the session ended, and says when."""

    def __init__(self) -> None:
        self.reason: InvalidationReason | None = None
        self.ended = threading.Event()

    def did_invalidate(self, session: Any, reason: InvalidationReason, error: Any) -> None:
        self.reason = reason
        self.ended.set()

    def wait(self, timeout: float = 5.0) -> InvalidationReason | None:
        self.ended.wait(timeout)
        return self.reason


def session(host: EmbeddedHost, app_id: str, mode: SessionType) -> tuple[Any, Ends]:
    ends = Ends()
    return ExtendedRuntimeSession(host.app(app_id, mode), delegate=ends), ends


def watching(host: EmbeddedHost) -> None:
    """Wait until every source of the host subscribed and reported what it saw."""
    sources = [*host.backends.suppression, host.backends.sleep]
    for source in sources:
        assert isinstance(source, LogindShutdown | LogindSleep | PowerProfiles | UPowerBattery)
        assert source.caught_up(5.0)


class Signals:
    """The signals logind and the systemd double send, as a test on the bus sees them."""

    def __init__(self, bus: Bus) -> None:
        self.seen: list[tuple[str, tuple[Any, ...], float]] = []
        self._changed = threading.Condition()
        for interface, member in (
            (LOGIND[2], "PrepareForSleep"),
            (LOGIND[2], "PrepareForShutdown"),
            ("org.freedesktop.systemd1.Manager", "JobRemoved"),
        ):
            bus.subscribe(MatchRule(type="signal", interface=interface, member=member), self._keep)

    def _keep(self, message: Any) -> None:
        with self._changed:
            member = message.header.fields[HeaderFields.member]
            self.seen.append((member, message.body, time.monotonic()))
            self._changed.notify_all()

    def wait(self, member: str, body: tuple[Any, ...] | None = None, timeout: float = 10) -> float:
        """When `member` (with `body`) came; waits for it."""
        with self._changed:
            found = self._changed.wait_for(lambda: self._find(member, body), timeout)
        assert found is not None, f"no {member}{body or ''} within {timeout} s: {self.seen}"
        return found

    def _find(self, member: str, body: tuple[Any, ...] | None) -> float | None:
        for name, args, at in self.seen:
            if name == member and (body is None or args[: len(body)] == body):
                return at
        return None


@pytest.fixture
def bus() -> Iterator[Bus]:
    """The test's own system bus connection; logind is left as the test found it."""
    services.require("logind", "systemd-double")
    test_bus = Bus.system()
    (before,) = test_bus.call(logind_property("ScheduledShutdown"))
    yield test_bus
    # logind keeps the last action done ("suspend", "poweroff") as its ScheduledShutdown;
    # cancelling clears it, as a freshly started logind has it
    (after,) = test_bus.call(logind_property("ScheduledShutdown"))
    if after != before and before[1][0] == "":
        test_bus.call(logind("CancelScheduledShutdown"))
        (after,) = test_bus.call(logind_property("ScheduledShutdown"))
    test_bus.close()
    assert after == before


def our_delay_locks(bus: Bus) -> list[tuple[Any, ...]]:
    (locks,) = bus.call(list_inhibitors())
    return [lock for lock in locks if lock[1] == WHO and lock[5] == os.getpid()]


def logind(member: str, *args: Any, signature: str = "") -> Any:
    return method(*LOGIND, member, signature, *args)


class SlowWakeAlarm(TimerfdWakeAlarm):
    """The real alarm timer, armed as slowly as an RTC on a busy bus might be (0.3 s), and
    noting when each arming was done."""

    def __init__(self) -> None:
        super().__init__()
        self.done: list[tuple[datetime | None, float]] = []

    def arm(self, at: datetime | None) -> None:
        time.sleep(0.3)
        super().arm(at)
        self.done.append((at, time.monotonic()))


def test_the_embedded_host_watches_logind_upower_and_power_profiles() -> None:
    services.require("logind", "upower", "power-profiles")
    with EmbeddedHost() as host:
        names = [source.name for source in host.backends.suppression]
        assert names == ["logind-shutdown", "power-profiles", "upower"]
        assert host.backends.sleep is not None
        assert host.backends.sleep.name == "logind-sleep"
        watching(host)
        assert host.engine.conditions == Conditions()  # balanced, mains power, running
    details = {c.probe.name: c.probe.detail for c in survey(everything=True).candidates}
    assert details["logind-sleep"] == (
        "a logind sleep delay lock: suspend waits for the wake alarm (at most 5 s)"
    )
    assert details["upower"] == "UPower (the machine is on mains power)"
    assert details["power-profiles"] == "power-profiles-daemon (the profile is 'balanced')"


def test_suspend_waits_for_the_wake_alarm_of_the_earliest_start(bus: Bus) -> None:
    """The real PrepareForSleep: the host arms the alarm for its earliest scheduled start (here
    slowly), and only then lets logind go on: our delay lock goes after the arming is done and
    before logind hands the suspend on (the double's JobRemoved). After the resume the lock is
    taken again."""
    backends = survey().backends
    assert backends.wake_alarm is not None
    backends.wake_alarm.close()
    wake = backends.wake_alarm = SlowWakeAlarm()
    signals = Signals(bus)
    with EmbeddedHost(backends=backends) as host:
        watching(host)
        assert len(our_delay_locks(bus)) == 1
        later, _ = session(host, "org.example.sleep-later", SessionType.SMART_ALARM)
        sooner, _ = session(host, "org.example.sleep-sooner", SessionType.SMART_ALARM)
        now = datetime.now(UTC)
        later.start_at(now + timedelta(hours=2))
        assert host.settle()
        sooner.start_at(now + timedelta(hours=1))  # arming this one takes 0.3 s
        gone = _lock_gone_at(bus)
        bus.call(logind("Suspend", False, signature="b"))
        signals.wait("PrepareForSleep", (False,))
        lock_gone_at = gone()
        job_done_at = signals.wait("JobRemoved", (), timeout=1)
        assert eventually(lambda: len(our_delay_locks(bus)) == 1)
        armed, armed_done_at = wake.done[-1]
        assert armed == now + timedelta(hours=1)
        assert 3595.0 < wake.setting().left <= 3600.0
        assert armed_done_at < lock_gone_at < job_done_at
        assert later.state is SessionState.SCHEDULED
        assert sooner.state is SessionState.SCHEDULED
    # closing the host let go of the lock (logind sees the descriptor close a moment later)
    assert eventually(lambda: our_delay_locks(bus) == [])


def _lock_gone_at(bus: Bus) -> Callable[[], float]:
    """Watch our delay lock from now on; the returned function tells when it went."""
    when: list[float] = []

    def poll() -> None:
        while our_delay_locks(bus):
            time.sleep(0.002)
        when.append(time.monotonic())

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()

    def gone() -> float:
        thread.join(10)
        assert when, "our delay lock never went"
        return when[0]

    return gone


def test_shutdown_ends_running_sessions_and_an_alarm_that_comes_during_it(bus: Bus) -> None:
    """The real PrepareForShutdown(true): a running session ends SUPPRESSED_BY_SYSTEM at once,
    and an alarm whose date comes while the machine shuts down is suppressed too. The test
    holds a shutdown delay lock of its own so the shutdown lasts until that date; once it lets
    go, logind goes on, the double reports the job done, and PrepareForShutdown(false) lifts
    the suppression."""
    signals = Signals(bus)
    with EmbeddedHost(policy=SHORT) as host:
        watching(host)
        running, ends_running = session(host, "org.example.shutdown-run", SessionType.MINDFULNESS)
        alarm, ends_alarm = session(host, "org.example.shutdown-alarm", SessionType.SMART_ALARM)
        running.start()
        alarm.start_at(datetime.now(UTC) + timedelta(seconds=1))
        assert host.settle()
        assert running.state is SessionState.RUNNING
        hold = inhibit("shutdown", "extended-runtime tests", "a shutdown that lasts", "delay")
        (delay,) = bus.call(hold)
        try:
            bus.call(logind("PowerOff", False, signature="b"))
            signals.wait("PrepareForShutdown", (True,))
            assert ends_running.wait() is _R.SUPPRESSED_BY_SYSTEM
            assert host.engine.conditions.shutting_down
            assert ends_alarm.wait() is _R.SUPPRESSED_BY_SYSTEM  # its date came meanwhile
        finally:
            delay.close()
        signals.wait("PrepareForShutdown", (False,))
        assert eventually(lambda: not host.engine.conditions.shutting_down)
        again, _ = session(host, "org.example.shutdown-run", SessionType.MINDFULNESS)
        again.start()
        assert host.settle()
        assert again.state is SessionState.RUNNING
    (preparing,) = bus.call(logind_property("PreparingForShutdown"))
    assert preparing == ("b", False)


def logind_property(name: str) -> Any:
    return method(
        LOGIND[0], LOGIND[1], "org.freedesktop.DBus.Properties", "Get", "ss", LOGIND[2], name
    )


def powerprofilesctl(*args: str) -> None:
    subprocess.run(["powerprofilesctl", *args], check=True, timeout=10, capture_output=True)


def test_power_saver_ends_a_mindfulness_session_and_leaves_alarms_alone() -> None:
    services.require("power-profiles")
    with EmbeddedHost(policy=SHORT) as host:
        watching(host)
        mindful, ends_mindful = session(host, "org.example.saver-mind", SessionType.MINDFULNESS)
        ringing, _ = session(host, "org.example.saver-ring", SessionType.SMART_ALARM)
        scheduled, _ = session(host, "org.example.saver-later", SessionType.SMART_ALARM)
        mindful.start()
        ringing.start_at(datetime.now(UTC))
        scheduled.start_at(datetime.now(UTC) + timedelta(hours=1))
        assert host.settle()
        assert ringing.state is SessionState.RUNNING
        try:
            powerprofilesctl("set", "power-saver")
            assert ends_mindful.wait() is _R.SUPPRESSED_BY_SYSTEM
            assert host.engine.conditions.power_saver
        finally:
            powerprofilesctl("set", "balanced")
        assert eventually(lambda: not host.engine.conditions.power_saver)
        assert ringing.state is SessionState.RUNNING
        assert scheduled.state is SessionState.SCHEDULED


@pytest.fixture
def upower(tmp_path: Path) -> Iterator[tuple[str, StandInUPower]]:
    """A stand-in UPower on a private bus (no battery exists here; see the module docstring):
    mains power, a battery at 10 % that charges."""
    private = PrivateBus(tmp_path)
    values = {"OnBattery": False, "IsPresent": True, "Percentage": 10.0, "State": 1}
    try:
        with StandInUPower(private.address, **values) as stand_in:
            yield private.address, stand_in
    finally:
        private.close()


def test_a_low_battery_that_stops_charging_ends_frontmost_sessions_not_alarms(
    upower: tuple[str, StandInUPower],
) -> None:
    """The real UPower backend and host, against the stand-in UPower (see `upower`)."""
    address, stand_in = upower
    source = UPowerBattery(bus=Bus(address))
    with EmbeddedHost(policy=SHORT, backends=Backends(suppression=(source,))) as host:
        assert source.caught_up()
        assert host.engine.conditions.battery_percent == 10.0
        therapy, ends_therapy = session(
            host, "org.example.battery-pt", SessionType.PHYSICAL_THERAPY
        )
        alarm, _ = session(host, "org.example.battery-alarm", SessionType.SMART_ALARM)
        therapy.start()
        alarm.start_at(datetime.now(UTC))
        assert host.settle()
        assert therapy.state is SessionState.RUNNING  # 10 %, but charging
        stand_in.set(OnBattery=True)
        stand_in.set(State=2)  # discharging
        assert ends_therapy.wait() is _R.SUPPRESSED_BY_SYSTEM
        assert alarm.state is SessionState.RUNNING
        later, ends_later = session(host, "org.example.battery-self", SessionType.SELF_CARE)
        later.start()
        assert ends_later.wait() is _R.SUPPRESSED_BY_SYSTEM
        stand_in.set(Percentage=21.0)  # above the policy's 20 %: frontmost sessions run again
        assert eventually(lambda: host.engine.conditions.battery_percent == 21.0)
        again, _ = session(host, "org.example.battery-self", SessionType.SELF_CARE)
        again.start()
        assert host.settle()
        assert again.state is SessionState.RUNNING


def test_a_property_only_invalidated_is_read_again(upower: tuple[str, StandInUPower]) -> None:
    address, stand_in = upower
    source = UPowerBattery(bus=Bus(address))
    with EmbeddedHost(backends=Backends(suppression=(source,))) as host:
        assert source.caught_up()
        stand_in.invalidate(Percentage=5.0, State=2)
        stand_in.invalidate(OnBattery=True)
        assert eventually(lambda: host.engine.conditions.battery_percent == 5.0)
        assert eventually(lambda: not host.engine.conditions.charging)


@pytest.mark.parametrize(
    ("values", "percent", "charging"),
    [
        ({}, None, True),
        ({"IsPresent": True, "Percentage": 15.0, "State": 1}, 15.0, True),
        ({"OnBattery": True, "IsPresent": True, "Percentage": 15.0, "State": 2}, 15.0, False),
        ({"OnBattery": True, "IsPresent": True, "Percentage": 15.0, "State": 1}, 15.0, True),
        ({"OnBattery": True, "IsPresent": False, "Percentage": 0.0}, None, False),
    ],
)
def test_what_upower_says_becomes_the_battery_part_of_the_conditions(
    values: dict[str, Any], percent: float | None, charging: bool
) -> None:
    conditions = Battery().updated(values).change()(Conditions(power_saver=True))
    assert conditions == Conditions(power_saver=True, battery_percent=percent, charging=charging)


def test_with_logind_stopped_mid_session_the_session_ends_on_time(bus: Bus) -> None:
    """logind is stopped while a session runs (and its backends hold a keep-awake lock and
    the sleep delay lock), then started again: the session still expires on time, the host
    closes at once, and the probes say logind is missing meanwhile."""
    policy = short_policy(mindfulness=1.5, smart_alarm=30, physical_therapy=30, self_care=30)
    host = EmbeddedHost(policy=policy)
    try:
        watching(host)
        mindful, ends = session(host, "org.example.no-logind", SessionType.MINDFULNESS)
        mindful.start()
        assert host.settle()
        started = time.monotonic()
        _stop_logind()
        assert ends.wait(5) is _R.EXPIRED
        assert time.monotonic() - started < 1.5 + 0.5
        details = {c.probe.name: c.probe for c in survey(everything=True).candidates}
        assert not details["logind-sleep"].available
        assert details["logind-sleep"].detail.startswith("logind cannot tell of sleep here: ")
        assert not details["logind-shutdown"].available
        closing = time.monotonic()
        host.close()
        assert time.monotonic() - closing < 1.0
    finally:
        host.close()
        _start_logind()
    assert eventually(lambda: our_delay_locks(bus) == [])  # logind sees the close a moment later


def _stop_logind() -> None:
    pid = int((Path(services.load()["XRS_SERVICES_DIR"]) / "pid" / "logind").read_text())
    os.kill(pid, signal.SIGTERM)
    assert eventually(lambda: not _on_bus("org.freedesktop.login1"), timeout=5)


def _start_logind() -> None:
    subprocess.run([str(ROOT / "scripts" / "services"), "start"], check=True, timeout=60)
    assert _on_bus("org.freedesktop.login1")


def _on_bus(name: str) -> bool:
    done = subprocess.run(
        ["busctl", "--system", "--timeout=1", "status", name], capture_output=True, check=False
    )
    return done.returncode == 0


def test_a_before_sleep_that_fails_still_lets_the_machine_sleep(bus: Bus) -> None:
    """The lock is released even when the host's preparation raises, and retaken after."""
    signals = Signals(bus)
    source = LogindSleep()
    woke = threading.Event()

    def fail() -> None:
        raise RuntimeError("the host could not prepare")

    try:
        source.watch(fail, woke.set)
        assert source.caught_up()
        assert len(our_delay_locks(bus)) == 1
        asked = time.monotonic()
        bus.call(logind("Suspend", False, signature="b"))
        # released at once: logind goes on well before its 5 s timeout (other processes' own
        # delay locks may hold it a little)
        assert signals.wait("JobRemoved", ()) - asked < 4.0
        assert woke.wait(5)
        assert len(our_delay_locks(bus)) == 1
    finally:
        source.close()
    assert eventually(lambda: our_delay_locks(bus) == [])  # logind sees the close a moment later


def our_connections() -> int:
    """This process's connections to the system bus."""
    done = subprocess.run(
        ["busctl", "--system", "list", "--no-pager", "--no-legend"],
        capture_output=True, text=True, check=True, timeout=10,
    )  # fmt: skip
    return sum(1 for line in done.stdout.splitlines() if line.split()[1:2] == [str(os.getpid())])


def test_closed_hosts_leave_no_connection_thread_or_lock_behind(bus: Bus) -> None:
    services.require("upower", "power-profiles")
    assert our_delay_locks(bus) == []  # (the test's own connection is open from here)
    connections, threads = our_connections(), threading.active_count()
    for _ in range(5):
        with EmbeddedHost() as host:
            watching(host)
            assert our_connections() == connections + 1  # one, shared by every backend
            assert len(our_delay_locks(bus)) == 1
    assert our_connections() == connections
    assert threading.active_count() == threads
    assert eventually(lambda: our_delay_locks(bus) == [])  # logind sees the close a moment later
