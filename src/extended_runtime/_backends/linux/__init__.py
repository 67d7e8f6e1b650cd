"""The Linux backends: logind, wake alarms, the sound server, desktop notifications, rumble, the
terminal and the power services, each a module, each probing itself; `select.py` one level up
chooses among them. They load only when a host is created, never with `import extended_runtime`.
"""
