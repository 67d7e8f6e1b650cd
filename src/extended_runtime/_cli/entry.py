"""The `xrs` entry point: the quick path of `xrs run` first, the full command line otherwise.

Importing the command line (`main`, and click with it) costs more than a short command run
under `xrs run -q` takes, so this module imports nothing until it knows what is asked: a plain
`xrs run -q ...` goes to `quick`, which either runs it or declines before the command starts;
everything else, and whatever `quick` declines, goes to `main`.
"""

from __future__ import annotations

import sys

__all__ = ["main"]


def main() -> None:
    """`xrs`."""
    args = sys.argv[1:]
    if args[:1] == ["run"]:
        from .quick import quick_run

        status = quick_run(args[1:])
        if status is not None:
            sys.exit(status)
    from .main import main as full

    full()
