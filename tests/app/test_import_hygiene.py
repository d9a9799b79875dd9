"""Dependency direction: asr, rewrite and storage never load the app or the UI; inside the
app, only the entry point imports the CLI and only the CLI imports the TUI; and
`notetaker --help` stays fast by loading no model or UI code."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys

import pytest

from .conftest import ROOT

LIBRARIES = ("asr", "rewrite", "storage", "diarize")


def loaded_modules(code: str) -> list[str]:
    """Top-level names of every module `code` leaves in sys.modules, in a fresh interpreter."""
    script = code + "\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))\n"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.splitlines()[-1])


def roots(modules: list[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def test_libraries_do_not_import_the_app_or_textual():
    loaded = loaded_modules("import asr, asr.base, asr.registry, asr.whisper.engine, rewrite, storage, "
                            "storage.export")
    assert "asr.whisper.engine" in loaded and "storage.export" in loaded  # the imports did happen
    assert not {"textual", "notetaker"} & roots(loaded), sorted(
        m for m in loaded if m.split(".")[0] in ("textual", "notetaker"))


@pytest.mark.parametrize("package", LIBRARIES)
def test_no_import_statement_reaches_the_app(package):
    """Static check: also catches imports inside functions that the runtime check never runs."""
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in ("notetaker", "textual"), \
                    f"{path.relative_to(ROOT)}:{node.lineno} imports {name}"


def imported_names(path) -> list[tuple[int, str]]:
    """(line, module) of every import statement in a file, inside functions too; relative
    imports resolved against the file's package."""
    package = path.relative_to(ROOT).parent.parts
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            out += [(node.lineno, f"{module}.{a.name}") for a in node.names]
    return out


def app_modules(*leave_out: str):
    """The app's source files, less the sub-packages named."""
    for path in sorted((ROOT / "notetaker").rglob("*.py")):
        if path.relative_to(ROOT / "notetaker").parts[0] not in leave_out:
            yield path


def _reaches(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_only_the_entry_point_imports_the_cli():
    """`cli/` parses and prints; nothing below it (the TUI included) climbs back up."""
    for path in app_modules("cli", "__main__.py"):
        for line, name in imported_names(path):
            assert not _reaches(name, "notetaker.cli"), f"{path.relative_to(ROOT)}:{line} imports {name}"


def test_the_core_never_imports_the_tui_or_textual():
    """Only the CLI opens the TUI: start-up, recording, storage glue and models work without it."""
    for path in app_modules("cli", "tui"):
        for line, name in imported_names(path):
            assert not (_reaches(name, "notetaker.tui") or _reaches(name, "textual")), \
                f"{path.relative_to(ROOT)}:{line} imports {name}"


def test_help_loads_no_model_or_ui_code():
    loaded = loaded_modules(
        "import io, runpy, sys, contextlib\n"
        "sys.argv = ['notetaker', '--help']\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    try:\n"
        "        runpy.run_module('notetaker', run_name='__main__')\n"
        "    except SystemExit as e:\n"
        "        assert e.code in (0, None), e.code\n"
        "assert 'transcribe' in out.getvalue(), out.getvalue()\n"
    )
    heavy = {"mlx_lm", "textual", "mlx", "torch", "transformers", "sounddevice", "soundfile", "sqlite_utils"}
    assert not heavy & roots(loaded), sorted(heavy & roots(loaded))
    assert "notetaker.cli" in loaded


def test_help_runs_as_a_command():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-m", "notetaker", "--help"], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0 and p.stderr == ""
    for command in ("transcribe", "sessions", "show", "search", "export", "import", "doctor"):
        assert command in p.stdout


def test_no_import_cycles():
    """Every import statement (inside functions too) of asr, rewrite, storage and notetaker:
    the modules form no cycle, so each layer can be read, tested and replaced on its own."""
    from tests.support.imports import cycles, import_graph

    assert cycles(import_graph(ROOT)) == []


FAMILIES = ("asr.whisper", "asr.qwen3", "asr.voxtral")
# The experimental rewrite mode runs Voxtral's own decoder on text: it is that family's code.
USES_A_FAMILY_ITSELF = {"rewrite.voxtral_text": "asr.voxtral", "rewrite.probe": "asr.voxtral"}


def _family_of(module: str) -> str | None:
    return next((f for f in FAMILIES if module == f or module.startswith(f + ".")), None)


def test_only_the_registry_reaches_a_family():
    """Everything else asks asr.registry (names, defaults, capabilities, checks, loading), so
    a new family is one folder plus one registry line; the shared runtime imports no family."""
    from tests.support.imports import import_graph

    for module, targets in import_graph(ROOT).items():
        for target in targets:
            fam = _family_of(target)
            if fam is None or _family_of(module) == fam or module == "asr.registry":
                continue
            assert USES_A_FAMILY_ITSELF.get(module) == fam, f"{module} imports {target}: ask asr.registry"
            assert not module.startswith("asr.runtime")
