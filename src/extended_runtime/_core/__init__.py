"""The core: the session rules as data and a sans-I/O engine.

Nothing in this layer does I/O, starts a thread or reads the clock (except `clock`, the one
module that does). Everything above it (the API objects, the backends, the hosts, the command
line) imports from here; nothing here imports from them.
"""
