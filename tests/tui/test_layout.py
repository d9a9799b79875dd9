"""How the TUI is laid out (ARCHITECTURE.md): the app navigates, screens never import one
another, and the look comes from app.tcss alone."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support.imports import import_graph

TUI = Path(__file__).resolve().parents[2] / "notetaker" / "tui"


def test_screens_never_import_screens():
    """(No import cycle anywhere is checked for the whole project in tests/app/test_import_hygiene.py.)"""
    for name, imported in import_graph(TUI.parents[1], ("notetaker",)).items():
        if name.startswith("notetaker.tui.screens."):
            screens = sorted(m for m in imported if m.startswith("notetaker.tui.screens"))
            assert not screens, f"{name} imports {screens}: post a navigation message to the app instead"


def test_styles_live_in_app_tcss():
    from notetaker.tui.app import NotetakerApp

    assert NotetakerApp.CSS_PATH == "app.tcss" and (TUI / "app.tcss").is_file()
    for path in TUI.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Assign):
                names = {t.id for t in node.targets if isinstance(t, ast.Name)}
                assert not names & {"CSS", "DEFAULT_CSS"}, f"{path.name}:{node.lineno}: styles go in app.tcss"
