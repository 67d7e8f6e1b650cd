"""extended-runtime: WatchKit's extended runtime sessions for Python.

An app asks for a typed, time-limited session (self care, mindfulness, physical therapy, or a
smart alarm scheduled up to 36 hours ahead); while it runs the machine does not idle-sleep, the
app's delegate hears `did_start`, `will_expire` and `did_invalidate`, and an alarm alerts the
user with repeating haptics, sound and notifications.

    from extended_runtime import App, ExtendedRuntimeSession, SessionType

    app = App("org.example.breathe", SessionType.MINDFULNESS)
    session = ExtendedRuntimeSession(app=app, delegate=MyDelegate())
    session.start()

Every public name is exported here, once; implementation modules are private.
"""

from typing import TYPE_CHECKING

from ._api.app import App
from ._api.delegate import ExtendedRuntimeSessionDelegate, SessionDelegate
from ._api.session import ExtendedRuntimeSession
from ._core.enums import (
    ApplicationState,
    AutoLaunchAuthorizationStatus,
    ErrorCode,
    HapticType,
    InvalidationReason,
    SessionState,
    SessionType,
)
from ._core.errors import (
    ERROR_DOMAIN,
    ExtendedRuntimeSessionError,
    ManifestError,
    SessionUsageError,
)

if TYPE_CHECKING:
    from ._core.policy import Policy

__all__ = [
    "ERROR_DOMAIN",
    "App",
    "ApplicationState",
    "AutoLaunchAuthorizationStatus",
    "ErrorCode",
    "ExtendedRuntimeSession",
    "ExtendedRuntimeSessionDelegate",
    "ExtendedRuntimeSessionError",
    "HapticType",
    "InvalidationReason",
    "ManifestError",
    "Policy",
    "SessionDelegate",
    "SessionState",
    "SessionType",
    "SessionUsageError",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """`Policy` is loaded on first use: only hosts need it, and `import` stays quick."""
    if name == "Policy":
        from ._core.policy import Policy

        return Policy
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
