"""Snapshot tests (pytest-textual-snapshot) of the meetings list, search, a meeting and the
summary screen, on the seeded store at fixed times in UTC and a fixed terminal size.

After an intended change of look: `pytest tests/tui/test_snapshots.py --snapshot-update`,
then look at the new SVGs under __snapshots__ before committing them."""

from __future__ import annotations

from notetaker.tui.app import make_app
from notetaker.tui.screens.meeting import MeetingScreen
from notetaker.tui.screens.search import DEBOUNCE_S
from notetaker.tui.screens.summary import SummaryScreen

from .conftest import SIZE, settle, summary_reply


def test_sessions_screen(snap_compare, app):
    assert snap_compare(app, terminal_size=SIZE)


def test_sessions_screen_empty(snap_compare, store, make_deps):
    assert snap_compare(make_app(make_deps(store)), terminal_size=SIZE)


async def answered(pilot, query: str, timeout: float = 10.0) -> None:
    """Wait until the search screen shows the answer to `query`: under load the debounce timer
    can fire after any fixed pause, and the snapshot would catch the screen before it."""
    import time

    from notetaker.tui.screens.search import SearchScreen

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await settle(pilot, DEBOUNCE_S / 3)
        screen = pilot.app.screen
        if isinstance(screen, SearchScreen) and screen.query_text == query:
            return
    raise AssertionError(f"the search for {query!r} was not answered in {timeout} s")


def test_search_screen_with_a_query(snap_compare, app):
    async def type_query(pilot):
        await pilot.press("slash", *"budget")
        await answered(pilot, "budget")

    assert snap_compare(app, terminal_size=SIZE, run_before=type_query)


def test_search_screen_with_a_bad_query(snap_compare, app):
    async def type_query(pilot):
        await pilot.press("slash", *"a* b* c* d* e*")
        await answered(pilot, "a* b* c* d* e*")

    assert snap_compare(app, terminal_size=SIZE, run_before=type_query)


def test_meeting_screen_at_a_search_hit(snap_compare, app, seeded):
    async def open_late_segment(pilot):
        app.push_screen(MeetingScreen(app.deps, seeded.budget, focus_segment_id=seeded.seg["late"]))
        await settle(pilot, 0.05)

    assert snap_compare(app, terminal_size=SIZE, run_before=open_late_segment)


def test_summary_screen_after_streaming(snap_compare, app, seeded, rewrite):
    rewrite.replies = [summary_reply(seeded)]

    async def summarize(pilot):
        app.push_screen(SummaryScreen(app.deps, seeded.budget))
        await settle(pilot)
        app.clear_notifications()  # a toast's fade depends on timing
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=summarize)


def test_summary_screen_stored(snap_compare, app, seeded):
    async def open_stored(pilot):
        await pilot.press("s")
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=open_stored)


def test_help_screen(snap_compare, app):
    assert snap_compare(app, terminal_size=SIZE, press=["question_mark"])


def _live(store, make_deps):
    """The live view mid-meeting: the header (title, meeting time), finals with times (one
    flagged, one cleaned), the partial dim in place, and the status bar. The recorder is held
    back (its engine never loads) and the screen is fed the recorder's own messages with
    fixed numbers. Returns the app, the meeting's id, a `feed(pilot)` and the event that
    releases the engine."""
    import threading

    from notetaker.recorder import Progress
    from notetaker.tui.messages import FinalAdded, PartialChanged, ProgressChanged, Started
    from notetaker.tui.screens.live import LiveScreen

    from asr.base import ASRError

    hold = threading.Event()

    def engine():
        hold.wait(30)
        raise ASRError("held back for the snapshot")

    deps = make_deps(store, engine_factory=engine, memory_probe=lambda: 3 << 29,
                     memory_budget_bytes=12 << 30, memory_planned_bytes=7 << 28)
    app = make_app(deps, live=True)
    sid = store.create_session("Launch sync", "whisper", "tiny.en")
    texts = [("um so we we agreed to ship on friday", "So we agreed to ship on Friday.", ()),
             ("Dana will write the release notes", None, ()),
             ("the the the the the the the the", None, ("repetition",))]
    for i, (raw, clean, flags) in enumerate(texts):
        seg = store.add_segment(sid, raw, 4.0 * i, 4.0 * i + 3.5, flags=list(flags))
        if clean:
            store.set_clean_text({seg.id: clean})

    async def feed(pilot):
        screen = next(s for s in app.screen_stack if isinstance(s, LiveScreen))
        screen.post_message(Started(sid, "whisper/tiny.en"))
        for seg in store.segments(sid):
            screen.post_message(FinalAdded(seg))
        screen.post_message(PartialChanged("and marketing is"))
        screen.post_message(ProgressChanged(Progress(audio_s=14.2, done_s=13.5, compute_s=6.1, wall_s=14.3,
                                                     level_db=-23.4, dropped_frames=0)))
        await pilot.pause(0.1)
        return screen

    return app, sid, feed, hold


def _shoot(snap_compare, app, hold, run_before) -> None:
    """The snapshot of a held live view; the engine is released whatever happens."""
    try:
        assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
    finally:
        hold.set()


def _release_later(hold) -> None:
    """After the screenshot, let the app close. Under load the screenshot once came after a
    0.5 s release and showed the meeting stopped; 3 s costs at most 3 s per run."""
    import threading

    threading.Timer(3.0, hold.set).start()


def test_live_screen(snap_compare, store, make_deps):
    """Also a mark between the finals, and a toast in its own strip above the footer,
    covering no line of the transcript."""
    from notetaker.tui.widgets.live_transcript import LiveTranscript

    app, sid, feed, hold = _live(store, make_deps)

    async def run_before(pilot):
        screen = await feed(pilot)
        screen.query_one(LiveTranscript).add_mark(store.add_mark(sid, 6.0, "decision", "ship on Friday"))
        screen.notify("marked decision at 00:00:06", timeout=30)
        await pilot.pause(0.1)
        _release_later(hold)

    _shoot(snap_compare, app, hold, run_before)


def test_live_screen_with_notes(snap_compare, store, make_deps):
    """The notes pane open beside the transcript: two saved lines with their meeting times,
    and a third being typed."""
    from notetaker.tui.messages import NoteSaved

    app, sid, feed, hold = _live(store, make_deps)

    async def run_before(pilot):
        screen = await feed(pilot)
        await pilot.press("n")
        for at, text in ((3.0, "Friday ship date is **firm**"), (9.4, "ask Dana for the notes draft")):
            screen.post_message(NoteSaved(store.add_note(sid, at, text, created_at="2025-03-04T09:30:00Z")))
        await pilot.press(*"budget")
        await pilot.pause(0.1)
        _release_later(hold)

    _shoot(snap_compare, app, hold, run_before)


def test_live_screen_with_the_rewrite_backend_failed(snap_compare, store, make_deps):
    """The backend named at start (mlx) failed to load on the compute thread: the meeting
    records on, the status bar names it failed (`rewrite mlx ✖ failed`), and a toast says why
    and how to clean later. The failure comes as the recorder reports it (its listener's
    `on_rewrite_error`, with the line its factory's error makes)."""
    app, sid, feed, hold = _live(store, make_deps)

    async def run_before(pilot):
        screen = await feed(pilot)
        screen.listener.on_rewrite_error("weights are damaged")
        await pilot.pause(0.1)
        assert "rewrite mlx ✖ failed" in screen.status_text()
        _release_later(hold)

    _shoot(snap_compare, app, hold, run_before)


def test_new_meeting_dialog(snap_compare, seeded, make_deps):
    """`n` on the meetings list: the dialog over it, with two devices, the system audio, and
    two speech models (the plan's first). Fixed lists and title: nothing is read from this
    machine."""
    from notetaker.tui.deps import MeetingSetup, SpeechChoice

    setup = MeetingSetup(devices=[("[1] USB mic  (default)", "usb"), ("[2] Webcam", "cam")], system_audio=True,
                         speech=[SpeechChoice("whisper/tiny.en, 0.3 GB, the plan's choice", "whisper", "tiny.en"),
                                 SpeechChoice("whisper/base.en, 0.5 GB", "whisper", "base.en")],
                         title="Meeting 2025-03-05 10:00")
    app = make_app(make_deps(seeded.store, meeting_setup=lambda: setup, prepare_meeting=lambda choice: None))

    async def open_dialog(pilot):
        await pilot.press("n")
        await settle(pilot, 0.05)

    # SIZE's 30 rows: with two devices and two models the whole dialog fits (Start included)
    assert snap_compare(app, terminal_size=SIZE, run_before=open_dialog)
