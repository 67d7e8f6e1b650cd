"""The objects an app holds: `App`, `ExtendedRuntimeSession` and the delegate.

They own no rules: each is a thin face over whichever host its app is bound to, reached through
the one small interface in `port`.
"""
