"""Hostile input to the daemon's server: it answers or drops the bad connection, and nothing else.

Everything runs in this process and is real except the time: a `DaemonHost` on a `MockClock`
behind a `Server` on a Unix socket under `tmp_path`; one well-behaved `DaemonClient`, the
*victim*, with a running self-care session and an alarm scheduled an hour ahead; and raw
`AF_UNIX` sockets for the attacks, which write bytes the way a buggy or malicious process of the
same user could.

What the server promises (`protocol` and `server` module docstrings), and what is checked here:

* a frame whose length is 0 or over `protocol.MAX_FRAME` closes that connection before the body
  is read; a frame cut short, or a connection dropped mid-frame, ends that connection only;
* a well-framed body that is not a request gets an `Error` of kind `protocol`, with the request's
  id when one can be read, and the connection stays usable;
* the first request must be a `Hello` of the daemon's protocol version;
* a connection acts only on the apps it registered and the sessions handed to it;
* a client that lets its events pile up is disconnected, and the others are served meanwhile.

After every attack: the server still accepts, the attacker's connections are forgotten once it
closes them, the daemon's sessions are exactly what they were, and the victim's requests are
answered. The random part sends 10,000 frames in five property tests (`FUZZ_EXAMPLES` batches
of `BATCH` frames each), replaying each frame's expected answer from `protocol.decode_request`.
"""

from __future__ import annotations

import array
import fcntl
import logging
import socket
import struct
import termios
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from extended_runtime import (
    App,
    ApplicationState,
    Backends,
    ExtendedRuntimeSession,
    Policy,
    SessionState,
)
from extended_runtime._daemon import protocol as p
from extended_runtime._daemon import server as server_module
from extended_runtime._daemon.client import DaemonClient
from extended_runtime._daemon.host import DaemonHost
from extended_runtime._daemon.server import Server
from extended_runtime.testing import MockClock

from .helpers import ALARM, LOGGER, SELF_CARE, T0, eventually

#: The victim's apps: one with a running session, one with a scheduled alarm.
CARE = "org.example.care"
WAKE = "org.example.wake"
VICTIM_APPS = frozenset({CARE, WAKE})
#: The app an attacker registers on its own connection (no background mode: it can start
#: nothing, so whatever a mutated request asks of it leaves the daemon's sessions alone).
INTRUDER = "org.example.intruder"

#: How long a raw connection waits for the daemon to answer or close (seconds).
REPLY_WAIT = 5.0
#: Frames per batch, and batches per property test: 5 tests x 200 x 10 = 10,000 frames.
BATCH = 10
FUZZ_EXAMPLES = 200
FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


def steady(measure: Callable[[], int], timeout: float = 10.0) -> int:
    """`measure()` once it gave the same value for 0.3 s (four readings, 100 ms apart)."""
    seen = [measure()]
    deadline = time.monotonic() + timeout
    while len(seen) < 4 or seen[-4:] != [seen[-1]] * 4:
        assert time.monotonic() < deadline, f"still changing after {timeout} s: {seen[-4:]}"
        time.sleep(0.1)
        seen.append(measure())
    return seen[-1]


# -- the daemon and its victim ---------------------------------------------------------------


class Daemon:
    """An in-process daemon on a `MockClock`, and a well-behaved client with two sessions."""

    def __init__(self, folder: Path) -> None:
        self.clock = MockClock(T0)
        self.host = DaemonHost(Policy(), clock=self.clock, backends=Backends(cpu=None))
        self.server = Server(self.host, str(folder / "daemon.sock"))
        self.server.listen()
        self.client = DaemonClient(self.server.path)
        self.care = App(CARE, SELF_CARE, host=self.client)
        self.running = ExtendedRuntimeSession(app=self.care)
        self.running.start()
        self.wake = App(WAKE, ALARM, host=self.client)
        self.scheduled = ExtendedRuntimeSession(app=self.wake)
        self.scheduled.start_at(T0 + timedelta(hours=1))
        assert self.running.state is SessionState.RUNNING
        assert self.scheduled.state is SessionState.SCHEDULED
        #: What no attack may change.
        self.sessions = self.host.sessions()
        self.live = self.host.engine.live_sessions()
        assert self.live == 2

    @property
    def path(self) -> str:
        return self.server.path

    @property
    def victim_sessions(self) -> list[str]:
        return [self.running.session_id, self.scheduled.session_id]

    def victim_rows(self) -> list[dict[str, Any]]:
        return [row for row in self.host.sessions() if row["app_id"] in VICTIM_APPS]

    def check_unharmed(self, *, connections: int = 1) -> None:
        """The daemon accepts, forgot the closed attackers, changed nothing, serves the victim."""
        accepting = self.server._thread
        assert accepting is not None and accepting.is_alive()
        assert eventually(lambda: self.server.connections == connections), (
            f"{self.server.connections} connections are held; {connections} are open"
        )
        assert self.host.sessions() == self.sessions
        assert self.host.engine.live_sessions() == self.live
        assert not self.host.engine.conditions.paused
        self.check_victim_served()

    def check_victim_served(self) -> None:
        rows = self.client.status()["sessions"]
        victims = [row["session_id"] for row in rows if row["app_id"] in VICTIM_APPS]
        assert victims == self.victim_sessions
        self.care.state = ApplicationState.ACTIVE  # a SetAppState round trip
        assert self.running.state is SessionState.RUNNING
        assert self.scheduled.state is SessionState.SCHEDULED

    def close(self) -> None:
        self.client.close()
        self.server.close()
        self.host.close()


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    made = Daemon(tmp_path)
    try:
        yield made
    finally:
        made.close()


# -- raw connections -------------------------------------------------------------------------


def framed(body: bytes) -> bytes:
    """`body` behind a length prefix that matches it."""
    return p.HEADER.pack(len(body)) + body


def hello(request_id: int = 1, protocol: int = p.PROTOCOL_VERSION) -> bytes:
    return p.frame(p.Hello(id=request_id, protocol=protocol, pid=4242))


class Raw:
    """A connection to the daemon that writes whatever it is given, as an attacker's would."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(REPLY_WAIT)
        self.sock.connect(path)

    def send(self, data: bytes) -> bool:
        """Write `data`; False if the daemon had closed the connection."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return False
        return True

    def _read(self, size: int) -> bytes | None:
        buffer = b""
        while len(buffer) < size:
            try:
                chunk = self.sock.recv(size - len(buffer))
            except ConnectionResetError:
                chunk = b""
            except TimeoutError:
                raise AssertionError(
                    f"the daemon neither answered nor closed within {REPLY_WAIT} s"
                ) from None
            if not chunk:
                assert buffer == b"", f"the daemon ended the stream mid-frame after {buffer!r}"
                return None
            buffer += chunk
        return buffer

    def message(self) -> p.Reply | p.Error | p.Push | None:
        """The next message from the daemon; `None` once it closed the connection."""
        header = self._read(p.HEADER.size)
        if header is None:
            return None
        body = self._read(p.body_length(header))
        assert body is not None
        return p.decode_reply(body)

    def answer(self) -> tuple[list[p.Push], p.Reply | p.Error]:
        """The pushes, then the reply, that a request got; fails if the daemon closed."""
        pushes: list[p.Push] = []
        while True:
            message = self.message()
            assert message is not None, "the daemon closed the connection instead of answering"
            if not isinstance(message, p.Push):
                return pushes, message
            pushes.append(message)

    def request(self, data: bytes) -> p.Reply | p.Error:
        assert self.send(data)
        return self.answer()[1]

    def greet(self) -> None:
        reply = self.request(hello())
        assert isinstance(reply, p.Reply), reply

    def closed_by_daemon(self, within: float = 1.0) -> bool:
        """Whether the daemon closes the connection within `within` s, sending nothing more."""
        self.sock.settimeout(within)
        try:
            data = self.sock.recv(1)
        except ConnectionResetError:
            data = b""
        except TimeoutError:
            return False
        finally:
            self.sock.settimeout(REPLY_WAIT)
        assert data == b"", f"the daemon sent {data!r} where it should have closed"
        return True

    def queued(self) -> int:
        """Bytes the daemon sent that this side has not read yet."""
        count = array.array("i", [0])
        fcntl.ioctl(self.sock.fileno(), termios.FIONREAD, count)
        return count[0]

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw(daemon: Daemon) -> Iterator[Raw]:
    connection = Raw(daemon.path)
    try:
        yield connection
    finally:
        connection.close()


# -- the reference for each frame ------------------------------------------------------------


class Attack:
    """Sends well-framed bodies over raw connections, reconnecting when the daemon closes one,
    and checks each answer against what `protocol.decode_request` makes of the body."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.sent = 0
        #: How the frames were answered: undecodable, hello, refused (before hello), served.
        self.outcomes: Counter[str] = Counter()

    def run(self, bodies: list[bytes], *, greet: bool) -> None:
        connection: Raw | None = None
        greeted = False
        try:
            for body in bodies:
                if connection is None:
                    connection = Raw(self.daemon.path)
                    greeted = False
                    if greet:
                        connection.greet()
                        greeted = True
                assert connection.send(framed(body)), "the daemon closed a connection unasked"
                self.sent += 1
                pushes, reply = connection.answer()
                for push in pushes:
                    assert push.event.get("app_id") not in VICTIM_APPS, push
                outcome, greeted, open_ = self._check(body, reply, greeted)
                self.outcomes[outcome] += 1
                if not open_:
                    assert connection.closed_by_daemon()
                    connection.close()
                    connection = None
        finally:
            if connection is not None:
                connection.close()

    def _check(
        self, body: bytes, reply: p.Reply | p.Error, greeted: bool
    ) -> tuple[str, bool, bool]:
        """Check `reply`; return the outcome, whether the connection is now greeted, and
        whether it is still open."""
        try:
            request = p.decode_request(body)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
            assert isinstance(reply, p.Error), reply
            assert reply.kind == "protocol"
            assert reply.id == p.request_id(body)
            return "undecodable", greeted, True
        assert reply.id == request.id
        if isinstance(request, p.Hello):
            if request.protocol == p.PROTOCOL_VERSION:
                assert isinstance(reply, p.Reply), reply
                return "hello", True, True
            assert isinstance(reply, p.Error) and reply.kind == "protocol", reply
            return "hello", greeted, True
        if not greeted:
            assert isinstance(reply, p.Error), reply
            assert (reply.kind, reply.message) == ("protocol", "say hello first")
            return "refused", False, False
        assert not (isinstance(reply, p.Error) and reply.kind == "internal"), reply
        return "served", True, True


# -- strategies ------------------------------------------------------------------------------


def seeds(daemon: Daemon) -> list[Any]:
    """Valid requests of every kind to mutate; none can change the daemon's sessions as sent:
    the intruder app declares no mode, and the victim's apps are not registered on the
    attacker's connection. (`Pause` is left out: a user's tool may pause the daemon.)"""
    running, scheduled = daemon.victim_sessions
    soon = T0 + timedelta(minutes=5)
    return [
        p.Hello(id=1, protocol=p.PROTOCOL_VERSION, pid=4242),
        p.Hello(id=2, protocol=p.PROTOCOL_VERSION, pid=4242, launched_for="s-1"),
        p.RegisterApp(id=3, app_id=INTRUDER, mode=None, launch=["/bin/false"], state=2),
        p.SetAppState(id=4, app_id=INTRUDER, state=1),
        p.Start(id=5, app_id=INTRUDER, session_id="s-1"),
        p.StartAt(id=6, app_id=INTRUDER, session_id="s-2", when=soon),
        p.Invalidate(id=7, app_id=INTRUDER, session_id="s-1"),
        p.NotifyUser(id=8, app_id=INTRUDER, session_id="s-1", haptic=0, handler=True),
        p.NextAlert(id=9, session_id="s-1", sequence=0, delay=5.0, haptic=0),
        p.DelegateSet(id=10, session_id=running),
        p.AutoLaunch(id=11, app_id=INTRUDER),
        p.Status(id=12),
        p.Stop(id=13, session_id="s-3"),
        p.AllowAlarms(id=14, app_id=INTRUDER),
        p.Start(id=15, app_id=CARE, session_id=running),
        p.Invalidate(id=16, app_id=WAKE, session_id=scheduled),
        p.SetAppState(id=17, app_id=CARE, state=2),
        p.StartAt(id=18, app_id=WAKE, session_id=scheduled, when=soon),
        p.Exiting(id=19, app_id=INTRUDER),
        p.Exiting(id=20, app_id=CARE),  # would end the victim's running session
    ]


@st.composite
def mutated(draw: st.DrawFn, requests: list[Any]) -> bytes:
    """A valid request's body with a bit or bytes changed, cut off, inserted or appended."""
    body = bytearray(p.encode(draw(st.sampled_from(requests))))
    how = draw(st.sampled_from(["bit", "bit", "flip", "cut", "insert", "append"]))
    if how == "bit":  # often still a request, with another value somewhere
        body[draw(st.integers(0, len(body) - 1))] ^= 1 << draw(st.integers(0, 7))
    elif how == "flip":
        for _ in range(draw(st.integers(1, 4))):
            body[draw(st.integers(0, len(body) - 1))] = draw(st.integers(0, 255))
    elif how == "cut":
        del body[draw(st.integers(1, len(body) - 1)) :]
    elif how == "insert":
        at = draw(st.integers(0, len(body)))
        body[at:at] = draw(st.binary(min_size=1, max_size=16))
    else:
        body += draw(st.binary(min_size=1, max_size=64))
    return bytes(body)


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


_SMALL_INT = st.integers(-(2**63), 2**64 - 1)
_JUNK = st.one_of(
    st.floats(),
    st.binary(max_size=8),
    st.lists(st.integers(0, 9), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(0, 9), max_size=2),
    st.integers(1000, 50_000).map(lambda n: list(range(n))),  # a huge list
    st.integers(2, 60).map(_nested),  # nested lists
)
_NOT_INT = st.one_of(_JUNK, st.text(max_size=8), st.booleans(), st.none())
_NOT_STR = st.one_of(_JUNK, _SMALL_INT, st.booleans(), st.none())
_NOT_OPTIONAL_STR = st.one_of(_JUNK, _SMALL_INT, st.booleans())
_NOT_BOOL = st.one_of(_JUNK, _SMALL_INT, st.text(max_size=8), st.none())
_NOT_OPTIONAL_BOOL = st.one_of(_JUNK, _SMALL_INT, st.text(max_size=8))
_NOT_ACTION = st.one_of(_NOT_STR, st.sampled_from(["", "allow ", "ALLOW", "delete"]))
_NOT_DATETIME = st.one_of(
    _JUNK, _SMALL_INT, st.booleans(), st.none(), st.sampled_from(["x", "2026-01-05", "tomorrow"])
)
_NOT_DELAY = st.one_of(st.binary(max_size=8), st.text(max_size=8), st.booleans(), st.lists(_JUNK))
_NOT_LAUNCH = st.one_of(
    st.text(max_size=8),
    _SMALL_INT,
    st.booleans(),
    st.lists(_SMALL_INT, min_size=1, max_size=3),
    st.integers(2, 60).map(lambda depth: [_nested(depth)]),
    st.integers(1000, 50_000).map(lambda n: list(range(n))),
)
#: A wrong value for every field of every request.
WRONG: dict[str, st.SearchStrategy[Any]] = {
    "id": _NOT_INT,
    "protocol": _NOT_INT,
    "pid": _NOT_INT,
    "state": _NOT_INT,
    "haptic": _NOT_INT,
    "sequence": _NOT_INT,
    "limit": _NOT_INT,
    "app_id": _NOT_STR,
    "session_id": _NOT_STR,
    "launched_for": _NOT_OPTIONAL_STR,
    "mode": _NOT_OPTIONAL_STR,
    "handler": _NOT_BOOL,
    "paused": _NOT_BOOL,
    "when": _NOT_DATETIME,
    "delay": _NOT_DELAY,
    "launch": _NOT_LAUNCH,
    "answer": _NOT_OPTIONAL_BOOL,
    "cwd": _NOT_OPTIONAL_STR,
    "action": _NOT_ACTION,
    "warned": _NOT_BOOL,
}
#: The `op` of every request.
TAGS = frozenset(kind.__struct_config__.tag for kind in get_args(p.Request))
#: Every request with all its fields set to valid values (`Pause` included: a wrong value can
#: never pause the daemon, which the checks after each batch hold).
SAMPLES: list[Any] = [
    p.Hello(id=21, protocol=p.PROTOCOL_VERSION, pid=4242, launched_for="s-1"),
    p.RegisterApp(id=22, app_id=INTRUDER, mode=None, launch=None, state=0),
    p.SetAppState(id=23, app_id=INTRUDER, state=0),
    p.Start(id=24, app_id=INTRUDER, session_id="s-1"),
    p.StartAt(id=25, app_id=INTRUDER, session_id="s-1", when=T0),
    p.Invalidate(id=26, app_id=INTRUDER, session_id="s-1"),
    p.NotifyUser(id=27, app_id=INTRUDER, session_id="s-1", haptic=0, handler=False),
    p.NextAlert(id=28, session_id="s-1", sequence=0, delay=None, haptic=0),
    p.DelegateSet(id=29, session_id="s-1"),
    p.AutoLaunch(id=30, app_id=INTRUDER),
    p.Status(id=31),
    p.Stop(id=32, session_id="s-1"),
    p.Pause(id=33, paused=True),
    p.AllowAlarms(id=34, app_id=INTRUDER),
    p.Declare(id=35, app_id=INTRUDER, mode="alarm", launch=["true"], cwd="/"),
    p.Forget(id=36, app_id=INTRUDER),
    p.AppPolicy(id=37, app_id=INTRUDER, action="deny"),
    p.Apps(id=38),
    p.Reclaim(id=39, app_id=INTRUDER, session_id="s-1", warned=False),
    p.Exiting(id=40, app_id=INTRUDER),
]


def test_every_field_has_a_wrong_value() -> None:
    kinds = {type(sample) for sample in SAMPLES}
    assert kinds == set(get_args(p.Request))
    fields = {field.name for kind in kinds for field in msgspec.structs.fields(kind)}
    assert fields == set(WRONG)


@st.composite
def wrong_types(draw: st.DrawFn) -> tuple[bytes, int]:
    """A request as a map with one field of the wrong type, missing, or unknown, or with an
    unknown `op`; and the id its `Error` must carry."""
    sample = draw(st.sampled_from(SAMPLES))
    data: dict[str, Any] = msgspec.to_builtins(sample)
    request_id: int = data["id"]
    how = draw(st.sampled_from(["wrong", "wrong", "wrong", "missing", "unknown", "op"]))
    fields = msgspec.structs.fields(sample)
    if how == "missing":  # only a required field is missed
        fields = tuple(field for field in fields if field.required)
    name = draw(st.sampled_from([field.name for field in fields]))
    if how == "wrong":
        data[name] = draw(WRONG[name])
    elif how == "missing":
        del data[name]
    elif how == "unknown":
        data[draw(st.sampled_from(["extra", "ID", "op2", "sessionId"]))] = 1
    else:
        data["op"] = draw(st.one_of(st.text(max_size=12), _SMALL_INT, st.none()))
        if data["op"] in TAGS:
            data["op"] = "teleport"
    if name == "id" and how in ("wrong", "missing"):
        request_id = 0
    return msgspec.msgpack.encode(data), request_id


def foreign(daemon: Daemon) -> st.SearchStrategy[Any]:
    """Valid requests naming the victim's apps and sessions, which a connection that did not
    register them (or was not handed them) must be refused."""
    ids = st.integers(1, 2**31)
    apps = st.sampled_from(sorted(VICTIM_APPS))
    sessions = st.one_of(st.sampled_from(daemon.victim_sessions), st.text(max_size=40))
    when = st.datetimes(
        min_value=datetime(2026, 1, 4),  # noqa: DTZ001 - hypothesis attaches the zone
        max_value=datetime(2026, 1, 7),  # noqa: DTZ001
        timezones=st.just(UTC),
    )
    return st.one_of(
        st.builds(p.Start, id=ids, app_id=apps, session_id=sessions),
        st.builds(p.StartAt, id=ids, app_id=apps, session_id=sessions, when=when),
        st.builds(p.Invalidate, id=ids, app_id=apps, session_id=sessions),
        st.builds(
            p.NotifyUser,
            id=ids,
            app_id=apps,
            session_id=sessions,
            haptic=st.integers(0, 8),
            handler=st.booleans(),
        ),
        st.builds(p.SetAppState, id=ids, app_id=apps, state=st.integers(0, 2)),
        st.builds(p.AutoLaunch, id=ids, app_id=apps),
        st.builds(p.DelegateSet, id=ids, session_id=sessions),
        st.builds(
            p.NextAlert,
            id=ids,
            session_id=sessions,
            sequence=st.integers(0, 5),
            delay=st.one_of(st.none(), st.floats()),
            haptic=st.integers(0, 8),
        ),
    )


# -- the property tests: 10,000 frames -------------------------------------------------------


def _fuzz(daemon: Daemon, batches: st.SearchStrategy[tuple[list[bytes], bool]]) -> Attack:
    attack = Attack(daemon)

    @FUZZ
    @given(batches)
    def batch(frames: tuple[list[bytes], bool]) -> None:
        bodies, greet = frames
        attack.run(bodies, greet=greet)
        daemon.check_unharmed()

    batch()
    assert attack.sent >= FUZZ_EXAMPLES * BATCH
    return attack


def test_random_bodies_get_protocol_errors_and_change_nothing(daemon: Daemon) -> None:
    bodies = st.lists(st.binary(min_size=1, max_size=600), min_size=BATCH, max_size=BATCH)
    attack = _fuzz(daemon, st.tuples(bodies, st.booleans()))
    assert attack.outcomes["undecodable"] > FUZZ_EXAMPLES * BATCH // 2


def test_mutated_requests_are_answered_as_they_decode_and_change_nothing(daemon: Daemon) -> None:
    bodies = st.lists(mutated(seeds(daemon)), min_size=BATCH, max_size=BATCH)
    attack = _fuzz(daemon, st.tuples(bodies, st.booleans()))
    # the mutations reach every path: refused by the decoder, by the hello check, by a handler
    # (a mutated Hello that still decodes is rarer; the Hello tests below cover it)
    assert min(attack.outcomes[kind] for kind in ("undecodable", "refused", "served")) > 0


def test_valid_requests_before_hello_are_refused_and_the_connection_closed(
    daemon: Daemon,
) -> None:
    # every request but Hello, unmutated: each gets an Error and its connection is closed
    requests = [request for request in seeds(daemon) if not isinstance(request, p.Hello)]
    requests.append(p.Pause(id=40, paused=True))
    bodies = st.lists(st.sampled_from(requests).map(p.encode), min_size=BATCH, max_size=BATCH)
    attack = _fuzz(daemon, st.tuples(bodies, st.just(False)))
    assert attack.outcomes["refused"] == attack.sent


def test_wrong_types_get_a_protocol_error_with_the_request_id(daemon: Daemon) -> None:
    attack = Attack(daemon)

    @FUZZ
    @given(st.lists(wrong_types(), min_size=BATCH, max_size=BATCH), st.booleans())
    def batch(requests: list[tuple[bytes, int]], greet: bool) -> None:
        connection = Raw(daemon.path)
        try:
            if greet:
                connection.greet()
            for body, request_id in requests:
                assert connection.send(framed(body))
                attack.sent += 1
                reply = connection.answer()[1]
                assert isinstance(reply, p.Error), reply
                assert (reply.kind, reply.id) == ("protocol", request_id), reply
            # the connection is still usable
            assert connection.request(p.frame(p.Status(id=99))).id == 99
        finally:
            connection.close()
        daemon.check_unharmed()

    batch()
    assert attack.sent >= FUZZ_EXAMPLES * BATCH


def test_requests_for_another_connection_s_apps_are_refused(daemon: Daemon) -> None:
    attack = Attack(daemon)

    @FUZZ
    @given(st.lists(foreign(daemon), min_size=BATCH, max_size=BATCH))
    def batch(requests: list[Any]) -> None:
        connection = Raw(daemon.path)
        try:
            connection.greet()
            for request in requests:
                assert connection.send(p.frame(request))
                attack.sent += 1
                pushes, reply = connection.answer()
                assert pushes == []
                assert isinstance(reply, p.Error), (request, reply)
                assert (reply.kind, reply.id) == ("protocol", request.id)
                assert "this connection" in reply.message
        finally:
            connection.close()
        daemon.check_unharmed()

    batch()
    assert attack.sent >= FUZZ_EXAMPLES * BATCH


# -- bad lengths, cut frames, dropped connections --------------------------------------------


@pytest.mark.parametrize(
    "length",
    [0, p.MAX_FRAME + 1, 0x8000_0000, 0xFFFF_FFFF],
    ids=["zero", "max-plus-one", "negative-as-i32", "all-ones"],
)
@pytest.mark.parametrize("greet", [False, True], ids=["before-hello", "after-hello"])
def test_a_bad_length_closes_the_connection_before_any_body_is_read(
    daemon: Daemon, raw: Raw, length: int, greet: bool, caplog: pytest.LogCaptureFixture
) -> None:
    if greet:
        raw.greet()
    with caplog.at_level(logging.WARNING, LOGGER):
        assert raw.send(struct.pack(">I", length))
        # nothing of a body follows: a server that waited for one would not close
        assert raw.closed_by_daemon(within=1.0)
    assert f"frame length {length} is outside 1..{p.MAX_FRAME}" in caplog.text
    raw.close()
    daemon.check_unharmed()


def test_a_frame_of_exactly_max_frame_bytes_is_read_and_answered(daemon: Daemon, raw: Raw) -> None:
    raw.greet()
    assert raw.send(struct.pack(">I", p.MAX_FRAME))
    assert not raw.closed_by_daemon(within=0.3)  # it waits for the body
    body = p.encode(p.Status(id=7))
    assert raw.send(body + b"\xc0" * (p.MAX_FRAME - len(body)))
    reply = raw.answer()[1]
    assert isinstance(reply, p.Error) and (reply.kind, reply.id) == ("protocol", 0), reply
    assert raw.request(p.frame(p.Status(id=8))).id == 8
    raw.close()
    daemon.check_unharmed()


@pytest.mark.parametrize("greet", [False, True], ids=["before-hello", "after-hello"])
@pytest.mark.parametrize(
    "written",
    [
        b"\x00\x00",  # half a header
        struct.pack(">I", 100),  # a header alone
        struct.pack(">I", 100) + b"\x82" * 50,  # half the body
        p.frame(p.Status(id=5))[:-1],  # all but the last byte
    ],
    ids=["half-header", "header-only", "half-body", "one-byte-short"],
)
def test_a_connection_dropped_mid_frame_ends_only_itself(
    daemon: Daemon, greet: bool, written: bytes
) -> None:
    connection = Raw(daemon.path)
    if greet:
        connection.greet()
    assert connection.send(written)
    assert eventually(lambda: daemon.server.connections == 2)
    connection.close()
    daemon.check_unharmed()


def test_a_stalled_frame_blocks_only_its_connection(daemon: Daemon, raw: Raw) -> None:
    raw.greet()
    body = p.encode(p.Status(id=6))
    assert raw.send(p.HEADER.pack(len(body)) + body[:3])
    # the daemon waits for the rest of that frame, and serves the victim meanwhile
    daemon.check_unharmed(connections=2)
    assert raw.send(body[3:])
    reply = raw.answer()[1]
    assert isinstance(reply, p.Reply) and reply.id == 6
    raw.close()
    daemon.check_unharmed()


def test_many_connections_that_say_nothing_are_forgotten_when_they_close(daemon: Daemon) -> None:
    idle = [Raw(daemon.path) for _ in range(50)]
    assert eventually(lambda: daemon.server.connections == 51)
    daemon.check_victim_served()
    for connection in idle:
        connection.close()
    daemon.check_unharmed()


# -- wrong types and values, one by one ------------------------------------------------------

#: Well-framed maps of wrong types (or values no handler takes), and the id their `Error` has.
WRONG_REQUESTS: list[tuple[dict[str, Any], int]] = [
    ({"op": "start-at", "id": 41, "app_id": CARE, "session_id": "s", "when": 5}, 41),
    ({"op": "start-at", "id": 42, "app_id": CARE, "session_id": "s", "when": "x"}, 42),
    ({"op": "app-state", "id": 43, "app_id": CARE, "state": "x"}, 43),
    ({"op": "notify", "id": 44, "app_id": CARE, "session_id": "s", "haptic": 1e30}, 44),
    (
        {"op": "notify", "id": 45, "app_id": CARE, "session_id": "s", "haptic": 2, "handler": 1},
        45,
    ),
    (
        {
            "op": "next-alert",
            "id": 46,
            "session_id": "s",
            "sequence": 0,
            "delay": None,
            "haptic": 2**64 - 1,
        },
        46,
    ),
    (
        {"op": "next-alert", "id": 47, "session_id": "s", "sequence": "0", "delay": 1, "haptic": 0},
        47,
    ),
    ({"op": "register", "id": 48, "app_id": INTRUDER, "mode": "x", "launch": None, "state": 0}, 48),
    (
        {"op": "register", "id": 49, "app_id": INTRUDER, "mode": None, "launch": None, "state": 9},
        49,
    ),
    (
        {"op": "register", "id": 50, "app_id": INTRUDER, "mode": None, "state": 0}
        | {"launch": [[["x"]] * 10] * 10_000},
        50,
    ),
    (
        {"op": "register", "id": 51, "app_id": INTRUDER, "mode": None, "state": 0}
        | {"launch": list(range(100_000))},
        51,
    ),
    ({"op": "pause", "id": 52, "paused": 1}, 52),
    ({"op": "pause", "id": 53, "paused": "yes"}, 53),
    ({"op": "stop", "id": 54, "session_id": None}, 54),
    ({"op": "status", "id": 55, "extra": True}, 55),
    ({"op": "teleport", "id": 56}, 56),
    ({"op": 5, "id": 57}, 57),
    ({"id": 58}, 58),
    ({"op": "status", "id": "59"}, 0),
    ({"op": "status", "id": -1.5}, 0),
    ({"op": "status"}, 0),
]


@pytest.mark.parametrize(
    ("data", "request_id"), WRONG_REQUESTS, ids=[str(i) for _, i in WRONG_REQUESTS]
)
def test_a_request_of_wrong_types_gets_a_protocol_error_and_the_connection_goes_on(
    daemon: Daemon, raw: Raw, data: dict[str, Any], request_id: int
) -> None:
    raw.greet()
    reply = raw.request(framed(msgspec.msgpack.encode(data)))
    assert isinstance(reply, p.Error), reply
    assert (reply.kind, reply.id) == ("protocol", request_id)
    assert reply.message
    following = raw.request(p.frame(p.Status(id=60)))
    assert isinstance(following, p.Reply) and following.id == 60
    raw.close()
    daemon.check_unharmed()


def test_a_start_at_without_a_utc_offset_is_refused_at_the_boundary(
    daemon: Daemon, raw: Raw
) -> None:
    raw.greet()
    register = p.RegisterApp(id=63, app_id=INTRUDER, mode="alarm", launch=None, state=0)
    assert isinstance(raw.request(p.frame(register)), p.Reply)
    naive = {"op": "start-at", "id": 64, "app_id": INTRUDER, "session_id": "s-1"}
    reply = raw.request(framed(msgspec.msgpack.encode(naive | {"when": "2026-01-05T07:00:00"})))
    assert isinstance(reply, p.Error) and (reply.kind, reply.id) == ("protocol", 64), reply
    assert "$.when" in reply.message  # refused by the decoder, naming the field


@pytest.mark.parametrize("body", [b"\xc0", b"\x92\x01\x02", b"\xa4text", b"\xc1", b"\xff" * 9])
def test_a_body_that_is_no_map_gets_a_protocol_error_with_id_zero(
    daemon: Daemon, raw: Raw, body: bytes
) -> None:
    raw.greet()
    reply = raw.request(framed(body))
    assert isinstance(reply, p.Error) and (reply.kind, reply.id) == ("protocol", 0), reply
    assert raw.request(p.frame(p.Status(id=61))).id == 61
    raw.close()
    daemon.check_unharmed()


@pytest.mark.parametrize("nest", [b"\x91", b"\x81\xa1a"], ids=["arrays", "maps"])
def test_a_deeply_nested_body_gets_a_protocol_error_and_the_connection_goes_on(
    daemon: Daemon, raw: Raw, nest: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    # a megabyte of one-element arrays (or maps) inside each other: deeper than any decoder
    # recurses
    raw.greet()
    with caplog.at_level(logging.WARNING, LOGGER):
        reply = raw.request(framed(nest * (p.MAX_FRAME // len(nest))))
    assert isinstance(reply, p.Error) and (reply.kind, reply.id) == ("protocol", 0), reply
    assert [record for record in caplog.records if record.levelno >= logging.ERROR] == []
    assert raw.request(p.frame(p.Status(id=62))).id == 62
    raw.close()
    daemon.check_unharmed()


# -- hello ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_",
    [
        p.Status(id=71),
        p.Pause(id=72, paused=True),
        p.Stop(id=73, session_id="<victim>"),
        p.RegisterApp(id=74, app_id=INTRUDER, mode=None, launch=None, state=0),
        p.Invalidate(id=75, app_id=CARE, session_id="<victim>"),
        p.AllowAlarms(id=76, app_id=WAKE),
    ],
    ids=lambda request: type(request).__name__,
)
def test_a_first_request_other_than_hello_is_refused_and_the_connection_closed(
    daemon: Daemon, raw: Raw, request_: Any
) -> None:
    if getattr(request_, "session_id", None) == "<victim>":
        request_ = msgspec.structs.replace(request_, session_id=daemon.running.session_id)
    reply = raw.request(p.frame(request_))
    assert reply == p.Error(id=request_.id, kind="protocol", message="say hello first")
    assert raw.closed_by_daemon()
    raw.close()
    daemon.check_unharmed()


@pytest.mark.parametrize("version", [0, p.PROTOCOL_VERSION + 1, 2**31, -1])
def test_a_hello_of_another_protocol_is_refused_with_advice(
    daemon: Daemon, raw: Raw, version: int
) -> None:
    reply = raw.request(hello(request_id=81, protocol=version))
    assert isinstance(reply, p.Error), reply
    assert (reply.kind, reply.id) == ("protocol", 81)
    assert f"this daemon speaks protocol {p.PROTOCOL_VERSION}, the client {version}" in (
        reply.message
    )
    assert "upgrade extended-runtime" in reply.message
    assert "restart the daemon" in reply.message
    # a refused hello does not open the door
    refused = raw.request(p.frame(p.Status(id=82)))
    assert refused == p.Error(id=82, kind="protocol", message="say hello first")
    assert raw.closed_by_daemon()
    raw.close()
    daemon.check_unharmed()


# -- other connections' apps and sessions ----------------------------------------------------


def test_registering_the_victim_s_app_with_another_declaration_is_refused(
    daemon: Daemon, raw: Raw
) -> None:
    raw.greet()
    register = p.RegisterApp(id=91, app_id=CARE, mode="mindfulness", launch=None, state=2)
    reply = raw.request(p.frame(register))
    assert isinstance(reply, p.Error) and (reply.kind, reply.id) == ("usage", 91), reply
    assert CARE in reply.message
    start = p.Start(id=92, app_id=CARE, session_id=daemon.running.session_id)
    assert raw.request(p.frame(start)) == p.Error(
        id=92, kind="protocol", message=f"app {CARE!r} is not registered on this connection"
    )
    raw.close()
    daemon.check_unharmed()


def test_a_next_alert_for_another_connection_s_session_is_refused(daemon: Daemon, raw: Raw) -> None:
    raw.greet()
    answer = p.NextAlert(
        id=93, session_id=daemon.running.session_id, sequence=0, delay=None, haptic=0
    )
    reply = raw.request(p.frame(answer))
    assert reply == p.Error(
        id=93,
        kind="protocol",
        message=f"session {daemon.running.session_id!r} is not a live session of this connection",
    )
    raw.close()
    daemon.check_unharmed()


@pytest.mark.parametrize("app_id", ["", "bad\nid", "x" * 300], ids=["empty", "newline", "long"])
def test_an_app_id_that_app_refuses_is_refused_over_the_wire(
    daemon: Daemon, raw: Raw, app_id: str
) -> None:
    raw.greet()
    register = p.RegisterApp(id=94, app_id=app_id, mode=None, launch=None, state=0)
    reply = raw.request(p.frame(register))
    assert isinstance(reply, p.Error) and (reply.kind, reply.id) == ("protocol", 94), reply
    assert reply.message.startswith("app-id must be a string of letters, digits")
    assert app_id not in daemon.client.status()["apps"]
    raw.close()
    daemon.check_unharmed()


# -- a client that does not read -------------------------------------------------------------


def test_a_client_that_lets_its_events_pile_up_is_disconnected(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(server_module, "MAX_OUTBOX", 4)
    flood = Raw(daemon.path)
    flood.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
    when = T0 + timedelta(seconds=30)
    requests: list[Any] = [p.Hello(id=1, protocol=p.PROTOCOL_VERSION, pid=4242)]
    for n in range(8):  # eight alarms that start together: eight events at once
        app_id = f"org.example.flood{n}"
        requests.append(p.RegisterApp(id=2, app_id=app_id, mode="alarm", launch=None, state=0))
        requests.append(p.StartAt(id=3, app_id=app_id, session_id=f"flood-{n}", when=when))
    requests += [p.Status(id=4)] * 3000  # replies enough to fill the socket: it never reads
    assert flood.send(b"".join(p.frame(request) for request in requests))
    # the daemon's reader is stuck sending a reply once the unread bytes stop growing
    assert steady(flood.queued) > 0
    # a client slow to read its replies is not disconnected for it
    assert daemon.server.connections == 2
    daemon.check_victim_served()
    with caplog.at_level(logging.WARNING, LOGGER):
        daemon.clock.jump(30)  # the eight alarms start: their events pile up in the outbox
        assert eventually(lambda: daemon.server.connections == 1, 5.0)
    assert "does not read its events: disconnected" in caplog.text
    # the victim is unharmed; the flood's alarms are its own business
    assert daemon.victim_rows() == daemon.sessions
    daemon.check_victim_served()
    # what the flood had not read ends with the daemon's close (perhaps mid-frame: the daemon
    # was cut off while it wrote)
    while flood.sock.recv(1 << 16):
        pass
    flood.close()
