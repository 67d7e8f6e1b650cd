"""The delegate: how a session tells the app what happened.

`ExtendedRuntimeSessionDelegate` is a base class with no-op methods, so an app overrides only
what it needs; `SessionDelegate`, the matching `Protocol` for apps that prefer structural typing,
lives beside the session that calls it. A host calls these serially (see DESIGN.md): per session
at most one `did_start`, at most one `will_expire`, and exactly one `did_invalidate` once the
session has left NOT_STARTED. An exception raised by a delegate method is logged and does not
affect the session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._core.enums import InvalidationReason
    from .._core.errors import ExtendedRuntimeSessionError
    from .session import ExtendedRuntimeSession

__all__ = ["ExtendedRuntimeSessionDelegate"]


class ExtendedRuntimeSessionDelegate:
    """Base class for delegates: override the calls you care about."""

    def did_start(self, session: ExtendedRuntimeSession) -> None:
        """The session is running: `session.expiration_date` says until when."""

    def will_expire(self, session: ExtendedRuntimeSession) -> None:
        """The session expires soon (60 s by default): finish and clean up."""

    def did_invalidate(
        self,
        session: ExtendedRuntimeSession,
        reason: InvalidationReason,
        error: ExtendedRuntimeSessionError | None,
    ) -> None:
        """The session ended or could not start; `error` is set when `reason` is ERROR."""
