"""Backends behind the contracts of `extended_runtime.abc`, one module per kind of machine.

`memory` holds the reference implementations (in-memory store and event sink) and `null` the
logging backends used where no OS backend is installed yet. The choice of backends for a host is
made in one place, `select.py`.
"""
