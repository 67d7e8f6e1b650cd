"""The enumerations of the WatchKit session contract, with Apple's raw values.

Every integer enum keeps the raw value Apple's SDK headers give, so a log line, a stored row
or a message from another implementation means the same thing here. `SessionType` is a string
enum whose values are the `WKBackgroundModes` strings an app declares.

Two derived facts live beside the enums because every layer needs them: which session types are
*frontmost* (they end when the app leaves the foreground) and which may be scheduled.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class SessionState(IntEnum):
    """Where a session is in its life: `WKExtendedRuntimeSessionState`."""

    NOT_STARTED = 0
    SCHEDULED = 1
    RUNNING = 2
    INVALID = 3


class InvalidationReason(IntEnum):
    """Why a session ended: `WKExtendedRuntimeSessionInvalidationReason`."""

    NONE = 0
    SESSION_IN_PROGRESS = 1
    EXPIRED = 2
    RESIGNED_FRONTMOST = 3
    SUPPRESSED_BY_SYSTEM = 4
    ERROR = -1


class ErrorCode(IntEnum):
    """The details of an `InvalidationReason.ERROR`: `WKExtendedRuntimeSessionErrorCode`."""

    UNKNOWN = 1
    SCHEDULED_TOO_FAR_IN_ADVANCE = 2
    MUST_BE_ACTIVE_TO_START_OR_SCHEDULE = 3
    NOT_YET_STARTED = 4
    EXCEEDED_RESOURCE_LIMITS = 5
    BAR_DISABLED = 6
    NOT_APPROVED_TO_START_SESSION = 7
    NOT_APPROVED_TO_SCHEDULE = 8
    MUST_BE_ACTIVE_TO_PROMPT = 9
    UNSUPPORTED_SESSION_TYPE = 10


class AutoLaunchAuthorizationStatus(IntEnum):
    """Whether the host may launch the app for its scheduled session."""

    UNKNOWN = 0
    INACTIVE = 1
    ACTIVE = 2


class HapticType(IntEnum):
    """The alert patterns an alarm can play: `WKHapticType`."""

    NOTIFICATION = 0
    DIRECTION_UP = 1
    DIRECTION_DOWN = 2
    SUCCESS = 3
    FAILURE = 4
    RETRY = 5
    START = 6
    STOP = 7
    CLICK = 8
    NAVIGATION_LEFT_TURN = 9
    NAVIGATION_RIGHT_TURN = 10
    NAVIGATION_GENERIC_MANEUVER = 11
    UNDERWATER_DEPTH_PROMPT = 12
    UNDERWATER_DEPTH_CRITICAL_PROMPT = 13


class ApplicationState(IntEnum):
    """The app's foreground state: `WKApplicationState`."""

    ACTIVE = 0
    INACTIVE = 1
    BACKGROUND = 2


class SessionType(StrEnum):
    """The session type an app declares, as its `WKBackgroundModes` string."""

    SELF_CARE = "self-care"
    MINDFULNESS = "mindfulness"
    PHYSICAL_THERAPY = "physical-therapy"
    SMART_ALARM = "alarm"
    UNDERWATER_DEPTH = "underwater-depth"


#: Types that keep the app frontmost: they end with RESIGNED_FRONTMOST when it leaves.
FRONTMOST_TYPES = frozenset(
    {SessionType.SELF_CARE, SessionType.MINDFULNESS, SessionType.UNDERWATER_DEPTH}
)
#: Types whose running session ends when its app's process exits, whatever the host can do:
#: frontmost ones resign, and no process is ever launched into a physical-therapy session.
ENDED_BY_EXIT = FRONTMOST_TYPES | {SessionType.PHYSICAL_THERAPY}
