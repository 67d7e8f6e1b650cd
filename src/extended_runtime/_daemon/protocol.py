"""The daemon's wire protocol: length-framed, versioned, typed messages over a Unix socket.

Theory
------
A frame is a 4-byte big-endian length followed by that many bytes of MessagePack. The length is
checked before anything is read into memory: zero, or more than `MAX_FRAME`, closes the
connection, so a hostile prefix cannot make the daemon allocate. The body decodes straight into
one of the typed message classes below (`msgspec` checks every field's type as it decodes, and
refuses unknown fields), so a handler only ever sees a well-formed request; anything else gets an
`Error` reply naming what was wrong, and changes nothing.

A connection starts with `Hello`, which carries the protocol version the client speaks; a
daemon that speaks another refuses it in its reply, and the client says which one to upgrade.
Requests carry an `id` the client chooses; the daemon answers each with one `Reply` (or `Error`)
with the same id, in order. Session events for the apps of a connection arrive as `Push` frames,
and every event a request causes is pushed *before* the request's reply, so a session's `state`
is already mirrored when `start()` returns in the client.

Requests come in two families: those an app makes for its sessions (the `HostPort` calls), and
those of the user's own tools (`xrs status`, `xrs stop`, `xrs pause`). Both need the peer to be
the daemon's own user (`SO_PEERCRED`), checked when the connection is accepted.
"""

from __future__ import annotations

import socket
import struct
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from .status import PROTOCOL_VERSION

__all__ = [
    "ASK",
    "MAX_FRAME",
    "PROTOCOL_VERSION",
    "AllowAlarms",
    "AppPolicy",
    "Apps",
    "AutoLaunch",
    "Declare",
    "DelegateSet",
    "Error",
    "Exiting",
    "Forget",
    "FrameError",
    "Hello",
    "Invalidate",
    "NextAlert",
    "NotifyUser",
    "Pause",
    "PolicyAction",
    "Push",
    "Reclaim",
    "RegisterApp",
    "Reply",
    "Request",
    "SetAppState",
    "Start",
    "StartAt",
    "Status",
    "Stop",
    "decode_reply",
    "decode_request",
    "encode",
    "frame",
    "read_frame",
]

#: The largest frame either side accepts (bytes of body): far above any real message.
MAX_FRAME = 1 << 20
#: What the user can say about an app (`xrs apps ACTION APP`).
PolicyAction = Literal["allow", "deny", "disable-alarms", "allow-launch", "deny-launch", "reset"]
#: `AutoLaunch`'s reply when the user must be asked.
ASK = -1
#: The length prefix.
HEADER = struct.Struct(">I")


class FrameError(ValueError):
    """A frame that cannot be read: the connection is closed (its framing is lost)."""


class _Message(msgspec.Struct, frozen=True, tag_field="op", forbid_unknown_fields=True):
    """Any message; `op` names its class on the wire."""


class Hello(_Message, frozen=True, tag="hello"):
    """First request of a connection: the protocol the client speaks and who it is."""

    id: int
    protocol: int
    pid: int
    #: The session id the app was launched for (`XRS_LAUNCHED_FOR`), if the daemon launched it.
    launched_for: str | None = None


class RegisterApp(_Message, frozen=True, tag="register"):
    """Make an app known on this connection (`HostPort.register_app`)."""

    id: int
    app_id: str
    mode: str | None
    launch: list[str] | None
    state: int


class SetAppState(_Message, frozen=True, tag="app-state"):
    id: int
    app_id: str
    state: int


class Exiting(_Message, frozen=True, tag="exiting"):
    """The app's process is about to close its connection: what its exit ends for certain
    (frontmost sessions, a physical-therapy session) ends now, while it can still hear it."""

    id: int
    app_id: str


class Start(_Message, frozen=True, tag="start"):
    id: int
    app_id: str
    session_id: str


class StartAt(_Message, frozen=True, tag="start-at"):
    id: int
    app_id: str
    session_id: str
    #: An instant with its UTC offset: a date without one is refused as it is decoded.
    when: Annotated[datetime, msgspec.Meta(tz=True)]


class Invalidate(_Message, frozen=True, tag="invalidate"):
    id: int
    app_id: str
    session_id: str


class NotifyUser(_Message, frozen=True, tag="notify"):
    id: int
    app_id: str
    session_id: str
    haptic: int
    handler: bool


class NextAlert(_Message, frozen=True, tag="next-alert"):
    """The repeat handler's answer to an `AlertPlayed` that awaits one."""

    id: int
    session_id: str
    sequence: int
    delay: float | None
    haptic: int


class DelegateSet(_Message, frozen=True, tag="delegate-set"):
    id: int
    session_id: str


class AutoLaunch(_Message, frozen=True, tag="auto-launch"):
    """Apple's `requestAutoLaunchAuthorizationStatus`. Without `answer` the reply is the
    stored status, or `ASK` when the user must be asked (the client asks, then sends the
    answer)."""

    id: int
    app_id: str
    answer: bool | None = None


class Reclaim(_Message, frozen=True, tag="reclaim"):
    """After the daemon restarted, the process that holds a session takes it back. `warned`:
    it heard `will_expire` already. The reply: `scheduled`, `running` or `gone`."""

    id: int
    app_id: str
    session_id: str
    warned: bool = False


class Status(_Message, frozen=True, tag="status"):
    """The user's tools: what runs and what is scheduled (the first `limit` sessions, running
    ones first, then by date; the reply counts them all)."""

    id: int
    limit: int = 1000


class Stop(_Message, frozen=True, tag="stop"):
    """The user stops a session (`xrs stop ID`): it ends with NONE."""

    id: int
    session_id: str


class Pause(_Message, frozen=True, tag="pause"):
    """The user pauses (`paused=True`) or resumes all sessions."""

    id: int
    paused: bool


class AllowAlarms(_Message, frozen=True, tag="allow-alarms"):
    id: int
    app_id: str


class Declare(_Message, frozen=True, tag="declare"):
    """`xrs apps register`: the user declares an app the daemon may launch."""

    id: int
    app_id: str
    mode: str | None
    launch: list[str] | None
    cwd: str | None = None


class Forget(_Message, frozen=True, tag="forget"):
    """`xrs apps remove`: the daemon forgets an app's declaration."""

    id: int
    app_id: str


class AppPolicy(_Message, frozen=True, tag="policy"):
    """`xrs apps ACTION APP`: see `PolicyAction`."""

    id: int
    app_id: str
    action: PolicyAction


class Apps(_Message, frozen=True, tag="apps"):
    """`xrs apps list`: every app the daemon knows, with the user's answers."""

    id: int


Request = (
    Hello
    | RegisterApp
    | SetAppState
    | Exiting
    | Start
    | StartAt
    | Invalidate
    | NotifyUser
    | NextAlert
    | DelegateSet
    | AutoLaunch
    | Status
    | Stop
    | Pause
    | AllowAlarms
    | Declare
    | Forget
    | AppPolicy
    | Apps
    | Reclaim
)


class Reply(_Message, frozen=True, tag="reply"):
    """The request `id` succeeded; `value` is its answer, if it has one."""

    id: int
    value: Any = None


class Error(_Message, frozen=True, tag="error"):
    """The request `id` failed. `kind`: `usage` (a programming error, `SessionUsageError`),
    `session` (an `ExtendedRuntimeSessionError` with `code`), `protocol` (a malformed or
    unknown request) or `internal` (the daemon failed; it logged why)."""

    id: int
    kind: str
    message: str
    code: int | None = None


class Push(_Message, frozen=True, tag="push"):
    """A session event for one of this connection's apps (`codec.encode_event`)."""

    event: dict[str, Any]


DaemonMessage = Reply | Error | Push

_encoder = msgspec.msgpack.Encoder()
_requests = msgspec.msgpack.Decoder(Request)
_daemon_messages = msgspec.msgpack.Decoder(DaemonMessage)


def encode(message: _Message) -> bytes:
    """The message's body (without its length prefix)."""
    return _encoder.encode(message)


def frame(message: _Message) -> bytes:
    """The message as one frame: length prefix and body."""
    body = _encoder.encode(message)
    if len(body) > MAX_FRAME:
        raise FrameError(f"a {type(message).__name__} of {len(body)} bytes exceeds {MAX_FRAME}")
    return HEADER.pack(len(body)) + body


def body_length(header: bytes) -> int:
    """The body length a header announces; `FrameError` if it is out of bounds."""
    (length,) = HEADER.unpack(header)
    if length == 0 or length > MAX_FRAME:
        raise FrameError(f"frame length {length} is outside 1..{MAX_FRAME}")
    return int(length)


def read_exactly(sock: socket.socket, size: int) -> bytes:
    """`size` bytes from `sock`; `EOFError` if the peer closes first (`OSError` as raised)."""
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        n = sock.recv_into(view[got:])
        if n == 0:
            raise EOFError
        got += n
    return bytes(buffer)


def read_frame(sock: socket.socket) -> bytes:
    """The body of the next frame; `FrameError` for a length out of bounds (nothing more is
    read), `EOFError` or `OSError` when the connection ends."""
    return read_exactly(sock, body_length(read_exactly(sock, HEADER.size)))


def decode_request(body: bytes) -> Request:
    """A request; `msgspec.DecodeError` (a `ValueError`) if the body is not one."""
    return _requests.decode(body)


def decode_reply(body: bytes) -> DaemonMessage:
    """A daemon message; `msgspec.DecodeError` if the body is not one."""
    return _daemon_messages.decode(body)


def request_id(body: bytes) -> int:
    """The `id` of a body that failed to decode as a request, when one can be read (so the
    error reply reaches the caller that waits for it); else 0."""
    try:
        loose = msgspec.msgpack.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return 0
    if isinstance(loose, dict):
        value = loose.get("id")
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 63:
            return value
    return 0
