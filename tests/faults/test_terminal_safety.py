"""Stored text reaches a terminal inert: a title, transcript, mark or search snippet that
holds escape sequences, carriage returns or bidi overrides (an imported JSON can hold
anything) is shown with those characters visible, never obeyed, by `sessions`, `show`,
`search` and the TUI."""

from __future__ import annotations

import asyncio
import json

from storage import SessionStore

EVIL_TITLE = "Standup \x1b]0;owned\x07\x1b[2J\rFAKE"
EVIL_TEXT = "the zebra budget \x1b[31mis red\x1b[0m \u202eevil\u202c done"


def evil_meeting(cli, tmp_path) -> int:
    export = {"format": "notetaker.session", "version": 1,
              "session": {"id": 1, "title": EVIL_TITLE, "started_at": "2026-12-01T10:00:00+00:00",
                          "ended_at": "2026-12-01T10:05:00+00:00", "status": "complete", "engine": "whisper",
                          "model": "tiny.en", "duration_s": 300.0},
              "segments": [{"id": 1, "seq": 1, "start_s": 0.0, "end_s": 3.0, "text": EVIL_TEXT}],
              "marks": [{"t_s": 1.0, "kind": "note", "text": "mark \x1b[5mblink"}], "summaries": []}
    path = tmp_path / "evil.json"
    path.write_text(json.dumps(export))
    r = cli("import", path)
    assert r.rc == 0, r.err
    return int(r.err.split()[-1])


def assert_inert(output: str) -> None:
    assert "\x1b" not in output and "\r" not in output and "\x07" not in output and "\u202e" not in output
    assert "\\x1b" in output  # shown, not dropped


def test_cli_prints_stored_text_inert(cli, tmp_path):
    sid = evil_meeting(cli, tmp_path)
    for args in (("sessions",), ("show", str(sid)), ("search", "zebra"), ("recover",)):
        r = cli(*args)
        assert r.rc == 0, r.err
        if args[0] != "recover":
            assert_inert(r.out)
    assert "\\u202e" in cli("show", str(sid)).out
    # JSON keeps the text as it is, escaped by the JSON encoder
    shown = json.loads(cli("show", str(sid), "--json").out)
    assert shown["segments"][0]["text"] == EVIL_TEXT


def test_tui_shows_stored_text_inert(cli, tmp_path):
    from notetaker.tui.app import make_app
    from notetaker.tui.deps import AppDeps

    evil_meeting(cli, tmp_path)
    store = SessionStore.open(cli.db_path)
    app = make_app(AppDeps(store=store, engine_factory=lambda: None, export_dir=tmp_path, rewrite_backend="none"))
    seen: list[str] = []

    async def main() -> None:
        async with app.run_test(size=(140, 40)) as pilot:
            await pilot.pause()
            seen.append(app.export_screenshot())
            await pilot.press("enter")  # the meeting view
            for _ in range(10):
                await pilot.pause(0.05)
            seen.append(app.export_screenshot())

    try:
        asyncio.run(main())
    finally:
        store.close()
    lists, meeting = seen
    assert "\\x1b" in lists and "\x1b]0;" not in lists
    assert "\\x1b[31mis" in meeting.replace("&#160;", " ") or "\\x1b" in meeting
