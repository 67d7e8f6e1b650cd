"""Shared test helpers: a recording delegate and a virtual host at a fixed instant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from extended_runtime import (
    ExtendedRuntimeSession,
    ExtendedRuntimeSessionDelegate,
    ExtendedRuntimeSessionError,
    InvalidationReason,
    SessionState,
)
from extended_runtime.testing import VirtualHost

#: The instant a default `VirtualHost` starts at.
T0 = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Call:
    """One delegate call: its name, `host.now` during it, and the invalidation details."""

    name: str
    at: datetime
    reason: InvalidationReason | None = None
    error: ExtendedRuntimeSessionError | None = None


class Recorder(ExtendedRuntimeSessionDelegate):
    """A delegate that records every call with the host's time.

    Several recorders may share one `journal` to see the order of calls across sessions; each
    entry there is `(label, call)`.
    """

    def __init__(
        self,
        host: VirtualHost,
        label: str = "",
        journal: list[tuple[str, Call]] | None = None,
    ) -> None:
        self.host = host
        self.label = label
        self.journal = journal
        self.calls: list[Call] = []
        #: The session object each call received, and its `state` during the call.
        self.seen: list[tuple[ExtendedRuntimeSession, SessionState]] = []

    def _record(self, session: ExtendedRuntimeSession, call: Call) -> None:
        self.calls.append(call)
        self.seen.append((session, session.state))
        if self.journal is not None:
            self.journal.append((self.label, call))

    @property
    def names(self) -> list[str]:
        """The names of the calls so far, in order."""
        return [call.name for call in self.calls]

    def did_start(self, session: ExtendedRuntimeSession) -> None:
        self._record(session, Call("did_start", self.host.now))

    def will_expire(self, session: ExtendedRuntimeSession) -> None:
        self._record(session, Call("will_expire", self.host.now))

    def did_invalidate(
        self,
        session: ExtendedRuntimeSession,
        reason: InvalidationReason,
        error: ExtendedRuntimeSessionError | None,
    ) -> None:
        self._record(session, Call("did_invalidate", self.host.now, reason, error))

    def only_invalidation(self) -> Call:
        """The single call made, which must be `did_invalidate`."""
        assert self.names == ["did_invalidate"], self.names
        return self.calls[0]


@pytest.fixture
def host() -> VirtualHost:
    """A virtual host whose clock starts at `T0`, with the default policy."""
    return VirtualHost(now=T0)
