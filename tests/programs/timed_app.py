"""A small app on the embedded host, for tests that move time under a real process.

    python timed_app.py ALARM_IN [--mindful SECONDS] [--tz-at SECONDS ZONE]

It starts a mindfulness session with a budget of `--mindful` seconds (if given) and schedules a
smart alarm `ALARM_IN` seconds from now, given in the local time zone. `--tz-at S ZONE` switches
the process's time zone to ZONE S seconds after it is ready. Each line it prints is `WHAT WALL
ELAPSED [DETAIL]`: WALL is the wall clock as the process sees it (Unix seconds; libfaketime may
fake it), ELAPSED is CLOCK_BOOTTIME (never faked, never set). Lines: `ready`, `alarm-at` (the
alarm's instant), then the delegate calls `<session> did_start|will_expire|did_invalidate`, and
`done` when every session has ended. The host's log goes to stderr at DEBUG (a late start is
logged there with its lateness).

It never calls `time.sleep`, which libfaketime breaks when the monotonic clock is not faked.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from extended_runtime import (
    EmbeddedHost,
    ExtendedRuntimeSession,
    ExtendedRuntimeSessionDelegate,
    ExtendedRuntimeSessionError,
    InvalidationReason,
    Policy,
    SessionType,
)
from extended_runtime._backends.select import Backends

_print_lock = threading.Lock()


def say(what: str, detail: str = "") -> None:
    wall = datetime.now(UTC).timestamp()
    elapsed = time.clock_gettime(time.CLOCK_BOOTTIME)
    with _print_lock:
        print(f"{what} {wall:.6f} {elapsed:.6f} {detail}".rstrip(), flush=True)


class Printer(ExtendedRuntimeSessionDelegate):
    def __init__(self, name: str, ended: threading.Event) -> None:
        self.name = name
        self.ended = ended

    def did_start(self, session: ExtendedRuntimeSession) -> None:
        say(f"{self.name} did_start")

    def will_expire(self, session: ExtendedRuntimeSession) -> None:
        say(f"{self.name} will_expire", str(session.expiration_date))

    def did_invalidate(
        self,
        session: ExtendedRuntimeSession,
        reason: InvalidationReason,
        error: ExtendedRuntimeSessionError | None,
    ) -> None:
        say(f"{self.name} did_invalidate", reason.name)
        self.ended.set()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("alarm_in", type=float)
    parser.add_argument("--mindful", type=float)
    parser.add_argument("--tz-at", nargs=2)
    args = parser.parse_args()
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG, format="%(message)s")
    limits = Policy().with_limits(mindfulness=args.mindful or 60, smart_alarm=2)
    policy = replace(limits, will_expire_lead=timedelta(seconds=0.5))
    host = EmbeddedHost(policy, backends=Backends(cpu=None))
    ended = [threading.Event() for _ in range(2 if args.mindful else 1)]
    if args.mindful:
        mindful = host.app("org.example.breathe", SessionType.MINDFULNESS)
        ExtendedRuntimeSession(mindful, Printer("mindful", ended[1])).start()
    alarm_app = host.app("org.example.wake", SessionType.SMART_ALARM)
    alarm = ExtendedRuntimeSession(alarm_app, Printer("alarm", ended[0]))
    local_instant = datetime.now().astimezone() + timedelta(seconds=args.alarm_in)
    alarm.start_at(local_instant)
    say("alarm-at", f"{local_instant.timestamp():.6f}")
    say("ready")
    if args.tz_at:
        threading.Event().wait(float(args.tz_at[0]))
        os.environ["TZ"] = args.tz_at[1]
        time.tzset()
        say("tz", time.strftime("%Z"))
    for event in ended:
        event.wait(60)
    host.close()
    say("done")


if __name__ == "__main__":
    main()
