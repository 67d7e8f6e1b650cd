"""Testing tools for apps and backends: the virtual host, a mock clock, and contract suites.

`VirtualHost` runs the real engine on a virtual clock so an app's session logic, including
hour-long sessions, relaunches and alarms, can be tested in microseconds. `MockClock` drives the
embedded host's real loop from a test (`EmbeddedHost(clock=MockClock())`, `clock.jump(60)`,
`host.settle()`). The contract suites (`extended_runtime.testing.contracts`) check any backend or
store against the contracts of `extended_runtime.abc`.
"""

from ._clock import MockClock
from ._virtual import RecordedAlert, VirtualHost

__all__ = ["MockClock", "RecordedAlert", "VirtualHost"]
