"""The per-user daemon: where it lives (`paths`, `status`), how it is installed (`unit`), its
protocol and server.

Nothing is imported here, so a client that only asks whether a daemon runs (`status`) loads that
module and `paths`, and nothing of the server.
"""
