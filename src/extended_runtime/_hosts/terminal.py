"""`follow_terminal`: an app's state kept equal to what its controlling terminal says.

Theory
------
DESIGN.md's "Frontmost" row ends a self-care or mindfulness session when its app goes to the
BACKGROUND. For a terminal app, going to the background is Ctrl-Z, `bg`, or another job taking
the terminal; `follow_terminal` joins the terminal source chosen for this platform
(`_backends.select.terminal_source`) to `App.state`, so those become BACKGROUND and `fg` makes
the app ACTIVE again. INACTIVE is never set: a terminal cannot tell it.

One source serves the whole process, whatever the number of apps following it, because SIGTSTP
has one handler per process. Each report sets `app.state` (which acts at once through the host);
a BACKGROUND report then waits, at most `SETTLE_TIMEOUT`, until the host has delivered what it
caused (`EmbeddedHost.settle`, asyncio loops included). The source waits for that report before
it lets a Ctrl-Z stop the process, which is how a frontmost session ends with RESIGNED_FRONTMOST,
`did_invalidate` delivered, before the process stops. The first report, made inside the call,
does not wait: the app has heard nothing yet.
"""

from __future__ import annotations

import logging
import threading

from .._api.app import App
from .._backends.select import terminal_source
from .._core.enums import ApplicationState
from .._core.errors import SessionUsageError
from ..abc import AppStateSource
from .embedded import EmbeddedHost

__all__ = ["SETTLE_TIMEOUT", "TerminalFollower", "follow_terminal"]

log = logging.getLogger("extended_runtime")

#: How long a BACKGROUND report waits for the host to deliver what it caused (seconds).
SETTLE_TIMEOUT = 1.0

_source: list[AppStateSource | None] = []  # the process's terminal source, once chosen
_source_lock = threading.Lock()


class TerminalFollower:
    """An app following its terminal, as `follow_terminal` set it up.

    `following` says whether the app's state follows a terminal, `detail` why (not): without a
    controlling terminal (a service, a pipe, CI) nothing is followed and the app keeps its state.
    """

    def __init__(self, app: App, source: AppStateSource | None, detail: str) -> None:
        self.app = app
        self.detail = detail
        self._source = source
        self._report: _Reporter | None = None

    def __repr__(self) -> str:
        return f"<TerminalFollower {self.app.app_id}: {self.detail}>"

    @property
    def following(self) -> bool:
        """Whether the app's state follows the terminal now."""
        return self._report is not None

    def stop(self) -> None:
        """Stop following: the app keeps the state it has. Stopping twice changes nothing."""
        report, self._report = self._report, None
        if report is not None and self._source is not None:
            self._source.unwatch(report)

    def _start(self) -> None:
        assert self._source is not None
        report = _Reporter(self.app)
        try:
            self._source.watch(self.app.app_id, report)
        except OSError as error:  # the terminal went away since the probe
            self.detail = f"the terminal cannot be followed: {error}"
            return
        self._report = report


def follow_terminal(app: App | None = None) -> TerminalFollower:
    """Make `app`'s state follow this process's controlling terminal (default: `App.current()`).

    While this process group has the terminal's foreground the app is ACTIVE; Ctrl-Z, `bg` or
    another job in front make it BACKGROUND, so a self-care or mindfulness session ends with
    RESIGNED_FRONTMOST, its `did_invalidate` delivered before the process stops; `fg` makes it
    ACTIVE again. The state is set at once, before this returns. It lasts until the process
    exits or `stop()` is called on the result. Call it from the main thread: only there can
    Ctrl-Z be handled (elsewhere the process stops at once, its session still running, and only
    `bg` ends it). Without a controlling terminal nothing is followed; the result says why.
    """
    app = App.current() if app is None else app
    source = _terminal()
    if source is None:
        return TerminalFollower(app, None, "no terminal source on this platform")
    probe = source.probe()
    follower = TerminalFollower(app, source if probe.available else None, probe.detail)
    if probe.available:
        follower._start()
    return follower


def _terminal() -> AppStateSource | None:
    with _source_lock:
        if not _source:
            _source.append(terminal_source())
        return _source[0]


class _Reporter:
    """Sets `app.state` from each report; a BACKGROUND report, but for the first (made inside
    `follow_terminal`), then waits until the host has delivered what it caused."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.first = True

    def __call__(self, state: ApplicationState) -> None:
        first, self.first = self.first, False
        try:
            self.app.state = state
        except SessionUsageError as error:  # its host was closed: nothing is left to tell
            log.debug("%s no longer follows the terminal: %s", self.app.app_id, error)
            return
        host = self.app.host
        if state is ApplicationState.BACKGROUND and not first and isinstance(host, EmbeddedHost):
            host.settle(SETTLE_TIMEOUT, loops=True)
