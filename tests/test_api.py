"""The public API contract: names, raw values, the error domain, a light import."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

import extended_runtime
from extended_runtime import (
    ERROR_DOMAIN,
    ApplicationState,
    AutoLaunchAuthorizationStatus,
    ErrorCode,
    ExtendedRuntimeSession,
    ExtendedRuntimeSessionError,
    HapticType,
    InvalidationReason,
    SessionState,
    SessionType,
    SessionUsageError,
)
from extended_runtime.testing import VirtualHost

CONTRACT = {
    "ExtendedRuntimeSession",
    "ExtendedRuntimeSessionDelegate",
    "App",
    "SessionState",
    "InvalidationReason",
    "ErrorCode",
    "AutoLaunchAuthorizationStatus",
    "HapticType",
    "SessionType",
    "ApplicationState",
    "ExtendedRuntimeSessionError",
    "SessionUsageError",
    "ERROR_DOMAIN",
}


def test_every_contract_name_is_exported_once() -> None:
    exported = extended_runtime.__all__
    assert set(exported) >= CONTRACT
    assert len(exported) == len(set(exported))
    for name in exported:
        assert hasattr(extended_runtime, name), name


def test_implementation_modules_are_private() -> None:
    public = {"abc", "testing"}
    for name in dir(extended_runtime):
        module = getattr(extended_runtime, name)
        if type(module).__name__ == "module":
            assert name.startswith("_") or name in public, name


@pytest.mark.parametrize(
    ("enum", "values"),
    [
        (SessionState, {"NOT_STARTED": 0, "SCHEDULED": 1, "RUNNING": 2, "INVALID": 3}),
        (
            InvalidationReason,
            {
                "NONE": 0,
                "SESSION_IN_PROGRESS": 1,
                "EXPIRED": 2,
                "RESIGNED_FRONTMOST": 3,
                "SUPPRESSED_BY_SYSTEM": 4,
                "ERROR": -1,
            },
        ),
        (
            ErrorCode,
            {
                "UNKNOWN": 1,
                "SCHEDULED_TOO_FAR_IN_ADVANCE": 2,
                "MUST_BE_ACTIVE_TO_START_OR_SCHEDULE": 3,
                "NOT_YET_STARTED": 4,
                "EXCEEDED_RESOURCE_LIMITS": 5,
                "BAR_DISABLED": 6,
                "NOT_APPROVED_TO_START_SESSION": 7,
                "NOT_APPROVED_TO_SCHEDULE": 8,
                "MUST_BE_ACTIVE_TO_PROMPT": 9,
                "UNSUPPORTED_SESSION_TYPE": 10,
            },
        ),
        (AutoLaunchAuthorizationStatus, {"UNKNOWN": 0, "INACTIVE": 1, "ACTIVE": 2}),
        (ApplicationState, {"ACTIVE": 0, "INACTIVE": 1, "BACKGROUND": 2}),
        (
            HapticType,
            {
                "NOTIFICATION": 0,
                "DIRECTION_UP": 1,
                "DIRECTION_DOWN": 2,
                "SUCCESS": 3,
                "FAILURE": 4,
                "RETRY": 5,
                "START": 6,
                "STOP": 7,
                "CLICK": 8,
                "NAVIGATION_LEFT_TURN": 9,
                "NAVIGATION_RIGHT_TURN": 10,
                "NAVIGATION_GENERIC_MANEUVER": 11,
                "UNDERWATER_DEPTH_PROMPT": 12,
                "UNDERWATER_DEPTH_CRITICAL_PROMPT": 13,
            },
        ),
    ],
)
def test_enums_carry_apples_raw_values(enum: type, values: dict[str, int]) -> None:
    assert {member.name: int(member) for member in enum} == values  # type: ignore[attr-defined]


def test_session_type_values_are_background_mode_strings() -> None:
    assert {t.name: t.value for t in SessionType} == {
        "SELF_CARE": "self-care",
        "MINDFULNESS": "mindfulness",
        "PHYSICAL_THERAPY": "physical-therapy",
        "SMART_ALARM": "alarm",
        "UNDERWATER_DEPTH": "underwater-depth",
    }
    assert SessionType("alarm") is SessionType.SMART_ALARM


def test_error_carries_code_domain_and_message() -> None:
    assert ERROR_DOMAIN == "WKExtendedRuntimeSessionErrorDomain"
    error = ExtendedRuntimeSessionError(ErrorCode.MUST_BE_ACTIVE_TO_START_OR_SCHEDULE)
    assert error.code is ErrorCode.MUST_BE_ACTIVE_TO_START_OR_SCHEDULE
    assert error.domain == ERROR_DOMAIN
    assert error.message == (
        "The app must be active and before applicationWillResignActive to start or schedule a "
        "WKExtendedRuntimeSession."
    )
    assert str(error).endswith("(WKExtendedRuntimeSessionErrorDomain code 3)")
    assert ExtendedRuntimeSessionError(ErrorCode.UNKNOWN, "why").message == "why"


def test_usage_error_is_a_runtime_error() -> None:
    assert issubclass(SessionUsageError, RuntimeError)
    assert not issubclass(SessionUsageError, ExtendedRuntimeSessionError)


def test_import_is_light() -> None:
    """`import extended_runtime` loads no engine, CLI, asyncio, psutil or click."""
    code = (
        "import sys, extended_runtime\n"
        "heavy = {'asyncio', 'click', 'psutil', 'tomllib', 'extended_runtime._core.engine',"
        " 'extended_runtime._hosts.embedded', 'extended_runtime._cli.main',"
        " 'extended_runtime._hosts.base', 'extended_runtime._core.events',"
        " 'extended_runtime._core.policy'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"


def test_cli_help_does_not_load_the_engine() -> None:
    code = (
        "import sys\n"
        "from extended_runtime._cli.main import cli\n"
        "try:\n"
        "    cli.main(['--help'], prog_name='xrs')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('extended_runtime._core.engine' in sys.modules, 'psutil' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.stdout.strip().splitlines()[-1] == "False False"


def test_repr_follows_apples_description_layout() -> None:
    host = VirtualHost()
    session = ExtendedRuntimeSession(host.app("org.example.alarm", SessionType.SMART_ALARM))
    assert repr(session) == (
        f"<ExtendedRuntimeSession: org.example.alarm> state=0, sessionID={session.session_id}, "
        "expirationDate=(null)"
    )
    session.start_at(host.now)
    assert repr(session).endswith("state=2, sessionID=" + session.session_id
                                  + ", expirationDate=2026-01-05 06:30:00 +0000")  # fmt: skip
    assert re.fullmatch("[0-9a-f]{32}", session.session_id)
