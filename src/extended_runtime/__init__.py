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
Each name loads on first use (`from extended_runtime import App` loads the API and the core),
so `import extended_runtime` costs next to nothing, and a command line that needs none of
them, such as the quick path of `xrs run`, never pays for them.
"""

from typing import TYPE_CHECKING

from ._api import port as _port

if TYPE_CHECKING:
    from ._api.app import App
    from ._api.delegate import ExtendedRuntimeSessionDelegate
    from ._api.session import ExtendedRuntimeSession, SessionDelegate
    from ._backends.select import Backends
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

#: Where each public name lives (a module of this package).
_HOMES = {
    "App": "._api.app",
    "ExtendedRuntimeSessionDelegate": "._api.delegate",
    "ExtendedRuntimeSession": "._api.session",
    "SessionDelegate": "._api.session",
    "Backends": "._backends.select",
    "ApplicationState": "._core.enums",
    "AutoLaunchAuthorizationStatus": "._core.enums",
    "ErrorCode": "._core.enums",
    "HapticType": "._core.enums",
    "InvalidationReason": "._core.enums",
    "SessionState": "._core.enums",
    "SessionType": "._core.enums",
    "ERROR_DOMAIN": "._core.errors",
    "ExtendedRuntimeSessionError": "._core.errors",
    "ManifestError": "._core.errors",
    "SessionUsageError": "._core.errors",
    "Policy": "._core.policy",
    "EmbeddedHost": "._hosts.embedded",
    "TerminalFollower": "._hosts.terminal",
    "follow_terminal": "._hosts.terminal",
}


def _default_host() -> "_port.HostPort":
    from ._daemon.connect import default_host

    return default_host()


_port.use_default_host(_default_host)


def __getattr__(name: str) -> object:
    """Each public name, loaded from its module on first use and kept here after."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(home, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
