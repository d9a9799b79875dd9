"""Rewriting inside the application: finals cleaned while the ASR is idle (raw text kept),
a failing backend that loses nothing, and `notetaker summarize` end to end on a tiny
random-weight mlx-lm model, with every bad input as one line that changes nothing."""

from __future__ import annotations

import json
import socket
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

from notetaker.audio import FileSource
from notetaker.recorder import Recorder, RecorderListener
from rewrite.base import RewriteError
from storage import SessionStore
from tests.rewrite.scripted_backend import ScriptedBackend

from .conftest import write_wav
from .scripted import ScriptedEngine, final
from .test_recorder import FINAL_TEXTS, SCRIPT


class Shouting(ScriptedBackend):
    """Cleans by upper-casing (test double; the recorder only calls `cleanup`)."""

    def __init__(self, fail_after: int | None = None):
        super().__init__()
        self.batches: list[list[int]] = []
        self.fail_after = fail_after

    def cleanup(self, segments):
        if self.fail_after is not None and len(self.batches) >= self.fail_after:
            raise RewriteError("cannot reach the rewrite server at http://127.0.0.1:9/v1: connection refused")
        self.batches.append([s.id for s in segments])
        return [s.text.upper() for s in segments]


class Log(RecorderListener):
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def on_final(self, f, segment) -> None:
        self.events.append(("final", segment.id))

    def on_cleaned(self, segments) -> None:
        self.events += [("cleaned", s.id, s.clean_text) for s in segments]

    def on_rewrite_error(self, message: str) -> None:
        self.events.append(("error", message))

    def on_finished(self, result) -> None:
        self.events.append(("finished", result.status))


@pytest.fixture
def store(tmp_path: Path):
    s = SessionStore.open(tmp_path / "home" / "notetaker.db")
    yield s
    s.close()


def test_batch_transcription_cleans_everything_at_the_end(store, tmp_path):
    log, backend = Log(), Shouting()
    with FileSource.open(write_wav(tmp_path / "m.wav", 3.0)) as source:
        result = Recorder(store, ScriptedEngine(SCRIPT), source, title="t", listeners=[log], rewrite=backend).run()
    segs = store.segments(result.session_id)
    assert [s.text for s in segs] == FINAL_TEXTS  # raw text kept
    assert [s.clean_text for s in segs] == [t.upper() for t in FINAL_TEXTS]
    assert [e[0] for e in log.events] == ["final"] * 3 + ["cleaned"] * 3 + ["finished"]


def test_live_finals_are_cleaned_while_the_asr_is_idle(store, tmp_path):
    log, backend = Log(), Shouting()
    wav = write_wav(tmp_path / "m.wav", 3.0)
    with FileSource.open(wav, realtime=True, speed=3.0) as source:
        result = Recorder(store, ScriptedEngine(SCRIPT), source, title="t", listeners=[log], rewrite=backend,
                          realtime=True).run()
    kinds = [e[0] for e in log.events]
    # The first final is cleaned before the second one exists: cleanup runs during the meeting.
    assert kinds.index("cleaned") < kinds.index("final", 1)
    assert kinds[-1] == "finished" and kinds.count("cleaned") == 3
    assert all(len(b) <= 8 for b in backend.batches)
    assert [s.clean_text for s in store.segments(result.session_id)] == [t.upper() for t in FINAL_TEXTS]


def test_a_failing_backend_stops_cleanup_and_loses_nothing(store, tmp_path):
    log, backend = Log(), Shouting(fail_after=1)
    wav = write_wav(tmp_path / "m.wav", 3.0)
    with FileSource.open(wav, realtime=True, speed=3.0) as source:
        result = Recorder(store, ScriptedEngine(SCRIPT), source, title="t", listeners=[log], rewrite=backend,
                          realtime=True).run()
    assert result.status == "complete" and result.finals == 3
    assert [s.text for s in store.segments(result.session_id)] == FINAL_TEXTS
    errors = [e for e in log.events if e[0] == "error"]
    assert len(errors) == 1 and "connection refused" in errors[0][1]


def test_blank_finals_are_marked_clean_without_the_model(store, tmp_path):
    backend = Shouting()
    with FileSource.open(write_wav(tmp_path / "m.wav", 2.0)) as source:
        result = Recorder(store, ScriptedEngine([final(0.5, "  "), final(1.5, "Done.")]), source, title="t",
                          rewrite=backend).run()
    assert [s.clean_text for s in store.segments(result.session_id)] == ["  ", "DONE."]
    assert sum(len(b) for b in backend.batches) == 1


# -- notetaker summarize ----------------------------------------------------------------------


MEETING = {
    "format": "notetaker.session",
    "session": {"title": "Launch sync", "started_at": "2026-11-20T10:00:00Z", "status": "complete",
                "engine": "whisper", "model": "tiny.en", "duration_s": 40.0},
    "segments": [
        {"seq": 1, "start_s": 0.0, "end_s": 5.0, "text": "um so we we agreed to ship on friday"},
        {"seq": 2, "start_s": 5.0, "end_s": 9.0, "text": "Dana will write the release notes by Thursday"},
        {"seq": 3, "start_s": 9.0, "end_s": 14.0, "text": "open question is whether marketing is ready"},
    ],
}


@pytest.fixture(scope="module")
def tiny_llm(tmp_path_factory) -> Path:
    from tests.rewrite.tiny_llm import write_llm

    return write_llm(tmp_path_factory.mktemp("tiny-llm"), weight_scale=2.0)


def _imported(cli, tmp_path, data=MEETING) -> int:
    path = tmp_path / "meeting.json"
    path.write_text(json.dumps(data))
    run = cli("import", path)
    assert run.rc == 0, run.err
    return int(run.err.split()[-1])


def _state(cli, sid: int) -> tuple:
    shown = json.loads(cli("show", sid, "--json").out)
    return [s["text"] for s in shown["segments"]], len(shown["summaries"])


def test_summarize_streams_stores_and_exports(cli, tmp_path, tiny_llm):
    sid = _imported(cli, tmp_path)
    run = cli("summarize", sid, "--backend", "mlx", "--model", tiny_llm, "--clean", "--json", timeout=300)
    assert run.rc == 0, run.err
    out = run.json_lines()[-1]
    assert out["session_id"] == sid and out["backend"] == "mlx" and out["markdown"].strip()
    texts, n_summaries = _state(cli, sid)
    assert texts == [s["text"] for s in MEETING["segments"]] and n_summaries == 1  # raw text kept
    shown = json.loads(cli("show", sid, "--json").out)
    assert all(s["clean_text"] is not None for s in shown["segments"])
    md = cli("export", sid, "-f", "md").out
    assert "## Summary" in md and out["markdown"].strip().splitlines()[0] in md


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_summarize_bad_inputs_are_one_line_and_change_nothing(cli, tmp_path, tiny_llm):
    sid = _imported(cli, tmp_path)
    before = _state(cli, sid)
    (cli.home / "templates").mkdir(parents=True, exist_ok=True)
    (cli.home / "templates" / "bad.md").write_text("# {title}\nAttendees: {attendees}\n")
    empty = _imported(cli, tmp_path, {**MEETING, "segments": []})
    cases = [
        (["summarize", sid, "--backend", "openai", "--model", "m"],
         {"NOTETAKER_OPENAI_BASE_URL": f"http://127.0.0.1:{_closed_port()}"}, "cannot reach"),
        (["summarize", sid, "--backend", "mlx", "--model", tmp_path / "no-such-model"], None, "no-such-model"),
        (["summarize", empty, "--backend", "mlx", "--model", tiny_llm], None, "no transcript"),
        (["summarize", sid, "--backend", "mlx", "--model", tiny_llm, "--template", "bad"], None, "attendees"),
        (["summarize", sid, "--template", "nope", "--backend", "mlx"], None, "nope"),
        (["summarize", 999, "--backend", "mlx", "--model", tiny_llm], None, "999"),
    ]
    for args, env, words in cases:
        run = cli(*args, env=env, timeout=300)
        assert run.rc == 2, (args, run.err)
        assert run.err.count("\n") == 1 and words in run.err and "Traceback" not in run.err, (args, run.err)
        assert _state(cli, sid) == before


# -- citations a reader can follow ------------------------------------------------------------


def _twenty_segments() -> dict:
    return {**MEETING, "segments": [{"seq": i, "start_s": 3.0 * i, "end_s": 3.0 * i + 2.5,
                                     "text": f"point {i}: {['budget', 'hiring', 'launch', 'notes'][i % 4]}"}
                                    for i in range(1, 21)]}


def test_summarize_cites_meeting_numbers_and_prints_what_it_stores(cli, tmp_path):
    """A meeting stored after others (database ids in the 60s) is numbered 1..20; the model is
    shown those numbers, a citation outside them is removed from what is printed and from what
    is stored alike, and export → import keeps every citation on the same sentence."""
    from tests.rewrite.test_openai_compat import CHAT, Reply, _chunk, _sse

    for _ in range(3):
        _imported(cli, tmp_path, _twenty_segments())
    sid = _imported(cli, tmp_path, _twenty_segments())
    shown = json.loads(cli("show", sid, "--json").out)
    assert min(s["id"] for s in shown["segments"]) > 60
    assert [s["seq"] for s in shown["segments"]] == list(range(1, 21))
    plain = cli("show", sid).out.splitlines()[1:]
    assert [line.split()[0] for line in plain] == [f"[#{n}" for n in range(1, 21)]

    reply = "### Decisions\n- Ship the launch [#3, #7] [#61]\n\n### Action items\n- Write notes [#4-#8, #99]\n"
    pieces = [reply[i : i + 5] for i in range(0, len(reply), 5)]
    with _scripted_server() as server:
        server.routes[CHAT] = Reply(body=_sse(*(_chunk(p) for p in pieces), _chunk(None, "stop"), "[DONE]"),
                                    content_type="text/event-stream")
        run = cli("summarize", sid, "--backend", "openai", "--model", "m",
                  env={"NOTETAKER_OPENAI_BASE_URL": server.url}, timeout=120)
        assert run.rc == 0, run.err
        prompt = server.requests[-1].body["messages"][-1]["content"]
    assert "[#1 00:03] point 1: hiring" in prompt and "[#20 01:00] point 20: budget" in prompt
    assert "removed 2 citation" in run.err
    data = json.loads(cli("show", sid, "--json").out)
    (summary,) = data["summaries"]
    assert summary["markdown"] == "### Decisions\n- Ship the launch [#3, #7]\n\n### Action items\n- Write notes [#4-#8]"
    assert run.out == summary["markdown"] + "\n"  # printed == stored
    assert summary["citations"] == [{"bullet": "Ship the launch", "seqs": [3, 7]},
                                    {"bullet": "Write notes", "seqs": [4, 5, 6, 7, 8]}]
    md = cli("export", sid, "-f", "md").out
    assert "- Ship the launch [#3, #7]" in md and "**[#3 00:00:09]** point 3: notes" in md

    # export → import (into this database, where every id is new) keeps citations on the same sentences
    path = tmp_path / "again.json"
    path.write_text(cli("export", sid, "-f", "json").out)
    new = int(cli("import", path).err.split()[-1])
    again = json.loads(cli("show", new, "--json").out)
    assert again["summaries"][0]["markdown"] == summary["markdown"]
    text_of = {s["seq"]: s["text"] for s in again["segments"]}
    before = {s["seq"]: s["text"] for s in data["segments"]}
    for c in again["summaries"][0]["citations"]:
        assert [text_of[n] for n in c["seqs"]] == [before[n] for n in c["seqs"]]


@contextmanager
def _scripted_server():
    """The scripted OpenAI-compatible server of tests/rewrite/test_openai_compat.py."""
    from tests.rewrite import test_openai_compat as oc

    httpd = oc._QuietServer(("127.0.0.1", 0), oc.BaseHTTPRequestHandler)
    server = oc.ScriptedServer(f"http://127.0.0.1:{httpd.server_address[1]}")
    httpd.RequestHandlerClass = oc._handler(server)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
