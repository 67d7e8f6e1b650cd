"""extended-runtime: WatchKit's extended runtime sessions for Python.

An app asks for a typed, time-limited session (self care, mindfulness, physical therapy, or a
smart alarm scheduled up to 36 hours ahead); while it runs the machine does not idle-sleep, the
app's delegate hears `did_start`, `will_expire` and `did_invalidate`, and an alarm alerts the
user with repeating haptics, sound and notifications.

    from extended_runtime import App, ExtendedRuntimeSession, SessionType

    app = App("org.example.breathe", SessionType.MINDFULNESS)
    session = ExtendedRuntimeSession(app=app, delegate=MyDelegate())
    with session.running():
        ...

Every public name is exported here, once; implementation modules are private. This module is
also where the layers are joined: it tells the API layer which host a plain `App(...)` uses.
`EmbeddedHost`, `Policy`, `Backends`, `follow_terminal` and `TerminalFollower` load on first use,
so `import extended_runtime` stays light.
"""

from typing import TYPE_CHECKING

from ._api import port as _port
from ._api.app import App
from ._api.delegate import ExtendedRuntimeSessionDelegate
from ._api.session import ExtendedRuntimeSession, SessionDelegate
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
    from ._backends.select import Backends
    from ._core.policy import Policy
    from ._hosts.embedded import EmbeddedHost
    from ._hosts.terminal import TerminalFollower, follow_terminal

__all__ = [
    "ERROR_DOMAIN",
    "App",
    "ApplicationState",
    "AutoLaunchAuthorizationStatus",
    "Backends",
    "EmbeddedHost",
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
    "TerminalFollower",
    "follow_terminal",
]

__version__ = "0.1.0"


def _default_host() -> "_port.HostPort":
    from ._daemon.connect import default_host

    return default_host()


_port.use_default_host(_default_host)


def __getattr__(name: str) -> object:
    """`EmbeddedHost`, `Policy`, `Backends` and the terminal's names load on first use: only
    hosts need them."""
    if name == "EmbeddedHost":
        from ._hosts.embedded import EmbeddedHost

        return EmbeddedHost
    if name == "Policy":
        from ._core.policy import Policy

        return Policy
    if name == "Backends":
        from ._backends.select import Backends

        return Backends
    if name in ("follow_terminal", "TerminalFollower"):
        from ._hosts import terminal

        return getattr(terminal, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
