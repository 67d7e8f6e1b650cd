"""Background threads that never take the process's signals.

Theory
------
A signal sent to a process (Ctrl-C's SIGINT, SIGTERM) is delivered by the kernel to any one of
its threads that does not block it. Python runs its handlers in the main thread only: when
another thread receives the signal, the C-level handler notes it, but a main thread asleep in a
system call (`time.sleep`, a blocking read) is not interrupted, and the program does not hear
its Ctrl-C until that call returns, which may be never. An app's main thread must therefore be
the only one that takes signals, whatever threads the library runs beside it.

So every thread the package starts begins with the asynchronous signals blocked: it is started
while the starting thread blocks them (`signals_held()`), and a new thread inherits its
creator's signal mask, so there is no moment when it could take one. Threads started by a
library for us (jeepney's D-Bus router) are started inside `signals_held()` for the same
reason. Signals that report a fault of the thread itself (SIGSEGV, SIGBUS, SIGFPE, SIGILL) are
never blocked, nor can SIGKILL and SIGSTOP be. A signal that arrives while the starting thread
holds them stays pending and is delivered when the mask is restored: none is lost.

The same mask keeps a command whole: a host applies each command (the engine's answer, the
effects it hands to its workers) with the signals held when it runs in the main thread, so a
Ctrl-C that comes meanwhile is raised as the command returns, never halfway through it: the
session it ended is ended everywhere, and a second Ctrl-C during an app's clean-up cannot cut an
`invalidate()` in two.

Platforms without `pthread_sigmask` start threads as they are.
"""

from __future__ import annotations

import contextlib
import importlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["held_in_main_thread", "signals_held", "start_thread"]

#: Signals a thread must not block (faults of its own) or cannot block.
_NEVER_BLOCKED = frozenset(
    int(getattr(signal, name))
    for name in ("SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGKILL", "SIGSTOP")
    if hasattr(signal, name)
)


def _c_sigmask() -> Any:
    """The C call behind `signal.pthread_sigmask`, `None` where there is none. It answers with
    plain ints, where the wrapper makes an enum of every signal of the old mask: about 20 times
    the cost, and a host holds the signals around every command."""
    if not hasattr(signal, "pthread_sigmask"):
        return None
    try:
        return importlib.import_module("_signal").pthread_sigmask
    except (ImportError, AttributeError):
        return signal.pthread_sigmask


_SIGMASK: Any = _c_sigmask()
_HELD = (
    frozenset(int(s) for s in signal.valid_signals()) - _NEVER_BLOCKED if _SIGMASK else frozenset()
)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Block the asynchronous signals in the calling thread while the block runs; threads
    started inside it start with them blocked."""
    if _SIGMASK is None:
        yield
        return
    previous = _SIGMASK(signal.SIG_BLOCK, _HELD)
    try:
        yield
    finally:
        _SIGMASK(signal.SIG_SETMASK, previous)


def held_in_main_thread() -> contextlib.AbstractContextManager[None]:
    """`signals_held()` in the main thread, nothing elsewhere (no other thread takes signals).

    A host applies each command under it: a Ctrl-C that comes while a command half applied
    (the session ended in the engine, the keep-awake not yet released) lands once it is whole.
    """
    if threading.current_thread() is threading.main_thread():
        return signals_held()
    return contextlib.nullcontext()


def start_thread(
    target: Callable[..., object],
    *,
    name: str,
    args: tuple[Any, ...] = (),
    daemon: bool = True,
) -> threading.Thread:
    """Start a thread that takes no asynchronous signal (the main thread takes them all)."""
    thread = threading.Thread(target=target, name=name, args=args, daemon=daemon)
    with signals_held():
        thread.start()
    return thread
