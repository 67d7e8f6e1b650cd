"""Test doubles of system services that cannot run here (see each module's docstring)."""
