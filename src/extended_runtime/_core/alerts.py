"""Alert repetition: the sub-machine that plays a running smart alarm's alerts.

Theory
------
A running alarm alerts the user until it ends. Who drives the repetition is the one piece of
state that matters, and it moves like this::

    silent --notify_user--> app-driven --notify_user--> app-driven (the new call replaces it)
       |                        |
       +--app not running-------+--------------------> host-driven (until the session ends)

* *app-driven*: each play is followed by the app's repeat handler, which answers with the delay
  to the next play (`answer`). Until that answer arrives nothing is armed, so a handler that
  never returns stops the repetition rather than flooding. An app that gives no handler gets the
  default interval, armed here at once, and no answer is awaited (`Play.awaits_answer`). An
  answer quotes the `sequence` of the play it follows; an answer to an older play (the app
  called `notify_user` again meanwhile, or the host took over) is stale and ignored. DESIGN.md's
  rule for answers lives here: `None`, NaN or <= 0 stops the repetition (the app's explicit
  choice); anything else is held between `alert_interval_min` and `alert_interval_max`, so a
  handler returning 0.001 cannot flood the user with a thousand alerts a second;
* *host-driven*: the app cannot alert (its process is gone and will not be relaunched), so the
  host plays its default alert every `alert_interval_default` seconds until Stop or expiry, and
  an alarm is never silently lost.

`alerted` remembers whether anything ever played: the three-silent-alarms rule reads it when the
session ends. `stop` cancels whatever is armed; the session's end always calls it, so an alert
due at the very instant the session ends never plays.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Generic, NamedTuple

from .enums import HapticType
from .policy import Policy
from .timers import Entry, S, TimerKind, TimerQueue

__all__ = ["AlertRepetition", "Play"]


class Play(NamedTuple):
    """One alert to play now: what, whose, the sequence a repeat answer must quote, and whether
    the app's repeat handler is to answer it."""

    haptic: HapticType
    by_host: bool
    sequence: int
    awaits_answer: bool


class AlertRepetition(Generic[S]):
    """The alerts of one running alarm session (`subject` is the session the timers name)."""

    __slots__ = (
        "_by_host",
        "_fixed",
        "_haptic",
        "_last_at",
        "_policy",
        "_sequence",
        "_subject",
        "_timer",
        "_timers",
        "_waiting",
        "alerted",
    )

    def __init__(self, subject: S, timers: TimerQueue[S], policy: Policy) -> None:
        self._subject = subject
        self._timers = timers
        self._policy = policy
        self._sequence = 0
        self._by_host = False
        self._fixed = False  # repeats every default interval, without a handler
        self._waiting = False
        self._haptic = HapticType.NOTIFICATION
        self._last_at: datetime | None = None
        self._timer: Entry | None = None
        #: Whether any alert of this session has played.
        self.alerted = False

    @property
    def by_host(self) -> bool:
        """Whether the host drives the repetition (the app cannot alert)."""
        return self._by_host

    def by_app(self, haptic: HapticType, now: datetime, *, handler: bool) -> Play:
        """`notify_user`: play `haptic` now, replacing any repetition; the app's repeat handler
        answers each play, or without one (`handler` false) it repeats every default interval."""
        self._restart(haptic, by_host=False)
        self._fixed = not handler
        return self._play(now)

    def by_host_now(self, now: datetime) -> Play:
        """The app cannot alert: the host plays its default alert now and repeats it."""
        self._restart(HapticType.NOTIFICATION, by_host=True)
        return self._play(now)

    def due(self, now: datetime) -> Play:
        """The armed repetition came due: play again."""
        self._timer = None
        return self._play(now)

    def answer(self, sequence: int, delay: float | None, haptic: HapticType, now: datetime) -> None:
        """The repeat handler's answer to play `sequence`: arm the next play, or stop."""
        if sequence != self._sequence or not self._waiting:
            return
        self._waiting = False
        if delay is None or math.isnan(delay) or delay <= 0:
            return
        policy = self._policy
        delay = min(max(delay, policy.alert_interval_min), policy.alert_interval_max)
        self._haptic = haptic
        assert self._last_at is not None  # a play came first
        self._arm(max(self._last_at + timedelta(seconds=delay), now))

    def shift(self, delta: timedelta) -> None:
        """The wall clock was set by `delta` (the armed timer moves with the engine's)."""
        if self._last_at is not None:
            self._last_at += delta

    def stop(self) -> None:
        """Cancel whatever is armed (the session ended, or its app's process did); later
        answers are stale, and nothing plays until the app or the host alerts again."""
        self._restart(self._haptic, by_host=False)

    def _restart(self, haptic: HapticType, *, by_host: bool) -> None:
        self._sequence += 1
        self._timers.cancel(self._timer)
        self._timer = None
        self._waiting = False
        self._by_host = by_host
        self._fixed = by_host
        self._haptic = haptic

    def _play(self, now: datetime) -> Play:
        self.alerted = True
        self._last_at = now
        if self._fixed:
            interval = timedelta(seconds=self._policy.alert_interval_default)
            self._arm(now + interval)
        else:
            self._waiting = True
        return Play(self._haptic, self._by_host, self._sequence, not self._fixed)

    def _arm(self, at: datetime) -> None:
        self._timer = self._timers.add(at, TimerKind.ALERT, self._subject)
