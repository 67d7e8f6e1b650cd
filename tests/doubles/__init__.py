"""Stand-ins for services that cannot run on a test machine (or must not be disturbed by a
test), each on a real bus; each says in its docstring why, and where it runs."""
