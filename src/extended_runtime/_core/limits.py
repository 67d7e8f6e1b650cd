"""Apple's time limit per session type, and how a held keep-awake names a session.

Both are wanted before anything heavier is: the quick path of `xrs run` labels its lock the way
the engine labels a session's, and `Policy` starts from these limits. So this module imports
only the enums and `datetime`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from types import MappingProxyType

from .enums import SessionType

__all__ = ["DEFAULT_LIMITS", "keep_awake_why"]

#: Apple's time limit per type. Underwater depth has none documented (`None`: no expiry).
DEFAULT_LIMITS: Mapping[SessionType, timedelta | None] = MappingProxyType(
    {
        SessionType.SELF_CARE: timedelta(minutes=10),
        SessionType.MINDFULNESS: timedelta(hours=1),
        SessionType.PHYSICAL_THERAPY: timedelta(hours=1),
        SessionType.SMART_ALARM: timedelta(minutes=30),
        SessionType.UNDERWATER_DEPTH: None,
    }
)


def keep_awake_why(session_type: SessionType, expires: datetime | None) -> str:
    """The `why` of a keep-awake held for one session, as inhibitor lists show it."""
    if expires is None:
        return f"{session_type.value} session without a limit"
    # the fields, not `strftime`: this is on every start
    until = f"{expires.hour:02d}:{expires.minute:02d}:{expires.second:02d}"
    return f"{session_type.value} session until {until} UTC"
