"""Testing tools for apps and backends: the virtual host and reusable contract suites.

`VirtualHost` runs the real engine on a virtual clock so an app's session logic, including
hour-long sessions, relaunches and alarms, can be tested in microseconds. The contract suites
(`extended_runtime.testing.contracts`) check any backend or store against the contracts of
`extended_runtime.abc`.
"""

from ._virtual import RecordedAlert, VirtualHost

__all__ = ["RecordedAlert", "VirtualHost"]
