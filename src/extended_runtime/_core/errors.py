"""The few exceptions of the library, each one a caller can act on.

Two families are kept apart, as Apple keeps them apart:

* `ExtendedRuntimeSessionError` is a *runtime condition* in Apple's error domain. It normally
  reaches the app as the `error` argument of `did_invalidate`; it is raised only by the calls that
  Apple's API makes throwing (auto-launch authorization) and by `invalidate()` of an alarm while
  the app is not active. It carries `.code` (an `ErrorCode`), `.domain` and a message.
* `SessionUsageError` is a *programming error*: the app used the API in a way that can never
  work, such as starting a session twice. It is a `RuntimeError` and names the state that forbids
  the call.

`ManifestError` reports an unreadable or malformed app declaration (`pyproject.toml` table,
`extended-runtime.toml`, or environment), naming the file and the key.
"""

from __future__ import annotations

from .enums import ErrorCode, InvalidationReason

ERROR_DOMAIN = "WKExtendedRuntimeSessionErrorDomain"

#: The message of each code when no more specific one is given. Code 3 is Apple's own text.
DEFAULT_MESSAGES: dict[ErrorCode, str] = {
    ErrorCode.UNKNOWN: "The session ended because of an unknown error.",
    ErrorCode.SCHEDULED_TOO_FAR_IN_ADVANCE: (
        "A session can be scheduled at most 36 hours in advance."
    ),
    ErrorCode.MUST_BE_ACTIVE_TO_START_OR_SCHEDULE: (
        "The app must be active and before applicationWillResignActive to start or schedule a "
        "WKExtendedRuntimeSession."
    ),
    ErrorCode.NOT_YET_STARTED: "The session was invalidated before it was started.",
    ErrorCode.EXCEEDED_RESOURCE_LIMITS: (
        "The app used more CPU than its session type allows over the last 60 seconds."
    ),
    ErrorCode.BAR_DISABLED: (
        "Alarms are disabled for this app because its recent alarms never alerted the user; "
        "they stay off until the user allows them again."
    ),
    ErrorCode.NOT_APPROVED_TO_START_SESSION: (
        "The app is not approved to start a session: it declares no background mode, "
        "or the user denied it."
    ),
    ErrorCode.NOT_APPROVED_TO_SCHEDULE: "Only smart-alarm sessions can be scheduled.",
    ErrorCode.MUST_BE_ACTIVE_TO_PROMPT: (
        "The app must be active to ask the user for auto-launch authorization."
    ),
    ErrorCode.UNSUPPORTED_SESSION_TYPE: "The app's session type does not support this.",
}


class ExtendedRuntimeSessionError(Exception):
    """A session failure in `ERROR_DOMAIN`; `.code` says which."""

    domain: str = ERROR_DOMAIN

    def __init__(
        self,
        code: ErrorCode,
        message: str | None = None,
        *,
        reason: InvalidationReason | None = InvalidationReason.ERROR,
    ) -> None:
        self.code = ErrorCode(code)
        #: The invalidation reason, when this error reports a session that did not run.
        self.reason = reason
        self.message = message if message is not None else DEFAULT_MESSAGES[self.code]
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"ExtendedRuntimeSessionError({self.code.name}, {self.message!r})"

    def __str__(self) -> str:
        return f"{self.message} ({self.domain} code {int(self.code)})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ExtendedRuntimeSessionError):
            return NotImplemented
        return (self.code, self.message) == (other.code, other.message)

    def __hash__(self) -> int:
        return hash((self.code, self.message))


class SessionUsageError(RuntimeError):
    """The API was used in a way that can never work (a programming error)."""


class ManifestError(ValueError):
    """The app's declaration (pyproject table, manifest file or environment) is unusable."""
