"""How the TUI is laid out (ARCHITECTURE.md): the app navigates, screens never import one
another, no import cycle within notetaker/tui, and the look comes from app.tcss alone."""

from __future__ import annotations

import ast
from pathlib import Path

TUI = Path(__file__).resolve().parents[2] / "notetaker" / "tui"
OUTSIDE = {"notetaker.tui.launch"}  # CLI start-up code, on its way out of tui/


def module_name(path: Path) -> str:
    parts = path.relative_to(TUI.parents[1]).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def tui_imports() -> dict[str, set[str]]:
    """Each module of notetaker/tui → the notetaker.tui modules it imports (anywhere in it)."""
    modules = {module_name(p): p for p in TUI.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            found |= {t for t in targets if t in modules and t != name}
        graph[name] = found
    return graph


def test_screens_never_import_screens():
    for name, imported in tui_imports().items():
        if name.startswith("notetaker.tui.screens."):
            screens = sorted(m for m in imported if m.startswith("notetaker.tui.screens"))
            assert not screens, f"{name} imports {screens}: post a navigation message to the app instead"


def test_no_import_cycle_in_the_tui():
    graph = {k: v - OUTSIDE for k, v in tui_imports().items() if k not in OUTSIDE}
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            raise AssertionError("import cycle: " + " → ".join(path[path.index(node):] + [node]))
        if node in done:
            return
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, path + [node])
        done.add(node)

    for name in sorted(graph):
        visit(name, [])


def test_styles_live_in_app_tcss():
    from notetaker.tui.app import NotetakerApp

    assert NotetakerApp.CSS_PATH == "app.tcss" and (TUI / "app.tcss").is_file()
    for path in TUI.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Assign):
                names = {t.id for t in node.targets if isinstance(t, ast.Name)}
                assert not names & {"CSS", "DEFAULT_CSS"}, f"{path.name}:{node.lineno}: styles go in app.tcss"
