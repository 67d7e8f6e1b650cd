"""Stand-ins for services that cannot run on a test machine, each run as its own process on a
real bus; each says in its docstring why the real service cannot run here."""
