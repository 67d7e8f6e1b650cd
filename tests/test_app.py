"""`App`: declaration from pyproject, manifest or environment, and bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from extended_runtime import (
    App,
    ApplicationState,
    ExtendedRuntimeSession,
    InvalidationReason,
    ManifestError,
    SessionState,
    SessionType,
    SessionUsageError,
)
from extended_runtime.testing import VirtualHost

from .helpers import T0


def test_app_from_pyproject_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "sleepy"\n\n[tool.extended-runtime]\n'
        'app-id = "org.example.sleep"\nbackground-mode = "alarm"\n'
        'launch = ["python", "-m", "sleepy"]\n'
    )
    app = App.from_environment(tmp_path, {})
    assert app.app_id == "org.example.sleep"
    assert app.background_mode is SessionType.SMART_ALARM
    assert app.launch == ("python", "-m", "sleepy")
    assert app.state is ApplicationState.ACTIVE


def test_manifest_file_is_found_from_a_subfolder(tmp_path: Path) -> None:
    (tmp_path / "extended-runtime.toml").write_text(
        'app-id = "org.example.breathe"\nbackground-mode = "mindfulness"\n'
        'launch = "breathe --quiet"\n'
    )
    nested = tmp_path / "src" / "breathe"
    nested.mkdir(parents=True)
    app = App.from_environment(nested, {})
    assert app.app_id == "org.example.breathe"
    assert app.background_mode is SessionType.MINDFULNESS
    assert app.launch == ("breathe", "--quiet")


def test_pyproject_without_table_is_skipped_for_the_environment(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "other"\n')
    env = {
        "XRS_APP_ID": "org.example.launched",
        "XRS_BACKGROUND_MODE": "alarm",
        "XRS_LAUNCHED_FOR": "0123456789abcdef0123456789abcdef",
    }
    app = App.from_environment(tmp_path, env)
    assert app.app_id == "org.example.launched"
    assert app.background_mode is SessionType.SMART_ALARM
    assert app.state is ApplicationState.BACKGROUND


def test_no_declaration_says_what_to_add(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"add a \[tool.extended-runtime\] table"):
        App.from_environment(tmp_path, {})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("app-id = ", "cannot read the app declaration"),
        ('background-mode = "alarm"\n', "app-id is missing"),
        ('app-id = "org.x"\nbackground-mode = "naps"\n', "'naps' is not one of: self-care"),
        ('app-id = "org.x"\nmode = "alarm"\n', "unknown key.s. mode"),
        ('app-id = "bad id!"\n', "app-id must be a string of letters"),
        ('app-id = "org.x"\nlaunch = 3\n', "launch must be a list of strings"),
        ('app-id = "org.x"\nlaunch = []\n', "launch must name a command"),
        ('app-id = "org.x"\nbackground-mode = 1\n', "background-mode must be a string"),
    ],
)
def test_malformed_manifest_names_file_and_problem(tmp_path: Path, text: str, message: str) -> None:
    manifest = tmp_path / "extended-runtime.toml"
    manifest.write_text(text)
    with pytest.raises(ManifestError, match=message) as caught:
        App.from_environment(tmp_path, {})
    assert str(manifest) in str(caught.value)


def test_bad_environment_is_reported(tmp_path: Path) -> None:
    env = {"XRS_APP_ID": "org.example.x", "XRS_BACKGROUND_MODE": "naps"}
    with pytest.raises(ManifestError, match="environment: background-mode 'naps'"):
        App.from_environment(tmp_path, env)


def test_app_state_rejects_non_states() -> None:
    app = App("org.example.x", SessionType.SELF_CARE)
    with pytest.raises(TypeError, match="ApplicationState"):
        app.state = "active"  # type: ignore[assignment]
    with pytest.raises(ValueError, match="7"):
        app.state = 7  # type: ignore[assignment]
    assert app.state is ApplicationState.ACTIVE


def test_on_session_is_a_decorator_and_needs_a_callable() -> None:
    app = VirtualHost(now=T0).app("org.example.x", SessionType.SMART_ALARM)

    def handler(session: object) -> None:
        pass

    assert app.on_session(handler) is handler
    with pytest.raises(TypeError, match="callable"):
        app.on_session(42)  # type: ignore[type-var]


def test_a_second_app_object_with_another_declaration_is_a_usage_error() -> None:
    host = VirtualHost()
    first = host.app("org.example.x", SessionType.SELF_CARE)
    with pytest.raises(SessionUsageError, match=r"'org\.example\.x'"):
        host.app("org.example.x", SessionType.MINDFULNESS)
    session = ExtendedRuntimeSession(app=first)
    session.start()
    assert session.session_type is SessionType.SELF_CARE
    assert session.state is SessionState.RUNNING


def test_a_second_app_object_with_another_declaration_names_both() -> None:
    host = VirtualHost()
    host.app("org.example.x", SessionType.SELF_CARE)
    with pytest.raises(SessionUsageError) as caught:
        host.app("org.example.x", SessionType.MINDFULNESS)
    assert "self-care" in str(caught.value)
    assert "mindfulness" in str(caught.value)


def test_a_second_app_object_with_the_same_declaration_is_the_same_app() -> None:
    host = VirtualHost()
    first = host.app("org.example.x", SessionType.SELF_CARE, launch=["x"])
    second = host.app("org.example.x", SessionType.SELF_CARE, launch=["x"])
    session = ExtendedRuntimeSession(app=first)
    session.start()
    again = ExtendedRuntimeSession(app=second)
    again.start()
    assert again.state is SessionState.INVALID
    assert again.invalidation_reason is InvalidationReason.SESSION_IN_PROGRESS
