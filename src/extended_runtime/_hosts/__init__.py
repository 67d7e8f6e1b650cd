"""Hosts: they own an engine, feed it time, perform its effects and deliver its calls.

`base` holds what every host does, `embedded` the in-process host on the real clock, and
`select` the one place that picks the default host.
"""
