"""Every row of the spec's misuse matrix (section 2.10) is pinned by a test.

The tests live with their topic, each marked `@misuse(row)`; `pytest -m misuse` runs them.
This file only checks that no row is left without one.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from .helpers import MISUSE_MATRIX

TESTS = Path(__file__).resolve().parent


def _marked_rows() -> dict[str, list[str]]:
    """Each row named by a `misuse` mark, with the tests that carry it."""
    rows: dict[str, list[str]] = {}
    for path in sorted(TESTS.glob("test_*.py")):
        module = importlib.import_module(f"{__package__}.{path.stem}")
        for name, value in vars(module).items():
            if not name.startswith("test_"):
                continue
            for mark in getattr(value, "pytestmark", []):
                if mark.name == "misuse":
                    rows.setdefault(mark.args[0], []).append(f"{path.stem}::{name}")
    return rows


def test_every_misuse_matrix_row_has_a_test() -> None:
    rows = _marked_rows()
    assert [row for row in MISUSE_MATRIX if row not in rows] == []
    assert set(rows) <= set(MISUSE_MATRIX)
