"""The capability probe that gates Voxtral's text mode, its stored scores, and the fallback."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from asr.registry import load_engine
from rewrite import probe
from rewrite.backend import RewriteBackend
from rewrite.base import Capabilities, Message, RewriteError
from rewrite.cleanup import is_faithful, words
from rewrite.probe import (
    PASS_SCORE,
    PROBE_VERSION,
    SENTENCES,
    ProbeResult,
    ProbeStore,
    model_key,
    probe_or_cached,
    run_probe,
    score_sentence,
)
from rewrite.voxtral_text import VoxtralTextBackend, choose_voxtral_or_fallback
from tests.asr.voxtral import conftest as voxtral_fixtures
from tests.asr.voxtral.conftest import _write_original

CLEAN = {s.raw: s.clean for s in SENTENCES}
FAILED_LINE = re.compile(r"^Voxtral text mode failed its probe \(score (\d\.\d\d) < 0\.75\); using mlx instead$")

# The tiny checkpoint's session fixtures: another package's conftest is not visible here.
hf_voxtral_model = voxtral_fixtures.hf_voxtral_model
hf_voxtral_state = voxtral_fixtures.hf_voxtral_state
original_state = voxtral_fixtures.original_state


def tiny_voxtral(root: Path, original_state, window: int | None = None) -> Path:
    folder = _write_original(root, original_state, bf16=False)
    if window is not None:  # the decoder window: room for a cleanup prompt; weights unchanged
        params = json.loads((folder / "params.json").read_text())
        params["sliding_window"] = window
        (folder / "params.json").write_text(json.dumps(params))
    return folder


@pytest.fixture(scope="module")
def engine(original_state, tmp_path_factory):
    return load_engine("voxtral", str(tiny_voxtral(tmp_path_factory.mktemp("probe") / "wide", original_state, 4096)))


# -- doubles ------------------------------------------------------------------------------------


class _Chat(RewriteBackend):
    """A scripted model: answers a cleanup prompt line by line with `clean(raw)`, through
    the real cleanup path (prompt, reply parsing, faithfulness check)."""

    name = "scripted"

    def __init__(self, clean=CLEAN.get):
        self.clean = clean
        self.calls = 0

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities("scripted", "scripted", context_tokens=4096)

    def count_tokens(self, text: str) -> int:
        return len(text.split()) + 1

    def complete(self, messages: Sequence[Message], max_tokens: int, temperature: float = 0.0) -> Iterator[str]:
        self.calls += 1
        lines = re.findall(r"^\[#(\d+)\] (.*)$", messages[-1].content, re.MULTILINE)
        yield "\n".join(f"[#{i}] {self.clean(raw) or raw}" for i, raw in lines)


class _Broken(_Chat):
    def complete(self, messages, max_tokens, temperature=0.0):
        raise RewriteError("server unreachable\nsecond line")


class _Fallback(_Chat):
    name = "mlx"


# -- the sentences and their scoring ------------------------------------------------------------


def test_the_sentences_are_noisy_and_their_reference_cleanups_pass():
    assert len(SENTENCES) == 8
    for s in SENTENCES:
        raw = words(s.raw)
        assert set(s.content) <= set(raw) and s.fillers
        assert not score_sentence(s, s.raw).passed  # the raw line keeps its fillers
        result = score_sentence(s, s.clean)
        assert result.passed, result
        assert is_faithful(s.raw, s.clean)  # cleanup would keep the perfect answer


def test_scoring_names_what_was_lost_and_what_was_left():
    s = SENTENCES[0]  # "um so we we need to uh ship the the release on friday"
    result = score_sentence(s, "Um, so we need to ship the release.")
    assert result.missing == ("friday",) and result.kept_fillers == ("um",) and not result.passed
    assert score_sentence(s, "So we we need to ship the release on Friday.").kept_fillers == ("we we",)


def test_a_perfect_cleaner_passes():
    result = run_probe(_Chat())
    assert result.score == 1.0 and result.passed
    assert [d.cleaned for d in result.details] == [s.clean for s in SENTENCES]
    assert all(d.passed for d in result.details)


@pytest.mark.parametrize("good", range(9))
def test_the_score_is_the_share_of_sentences_passed(good):
    ok = {s.raw for s in SENTENCES[:good]}
    result = run_probe(_Chat(lambda raw: CLEAN[raw] if raw in ok else raw))
    assert result.score == good / 8
    assert result.passed is (good / 8 >= PASS_SCORE) and result.passed is (good >= 6)


def test_backend_errors_fail_sentences_without_escaping():
    result = run_probe(_Broken())
    assert result.score == 0.0 and not result.passed
    assert all(d.error == "server unreachable" and not d.passed for d in result.details)


# -- on the tiny random Voxtral ----------------------------------------------------------------


def test_random_voxtral_fails_the_probe_and_mlx_takes_over(engine, tmp_path, monkeypatch, capsys):
    store = ProbeStore(tmp_path / "probes.json")
    built, lines = [], []

    def make_fallback():
        built.append(_Fallback())
        return built[-1]

    chosen = choose_voxtral_or_fallback(engine, store, make_fallback, lines.append)
    assert chosen is built[0] and len(built) == 1
    assert len(lines) == 1 and "\n" not in lines[0]
    m = FAILED_LINE.match(lines[0])
    assert m, lines[0]
    stored = store.get(model_key(engine))
    assert stored is not None and not stored.passed and stored.cached
    assert f"{stored.score:.2f}" == m.group(1) and stored.score < PASS_SCORE
    assert "Traceback" not in capsys.readouterr().err

    # The score is kept: the next start reads it instead of probing again.
    monkeypatch.setattr(probe, "run_probe", lambda backend: pytest.fail("probed again"))
    again: list[str] = []
    assert choose_voxtral_or_fallback(engine, ProbeStore(tmp_path / "probes.json"), make_fallback,
                                      again.append) is built[1]
    assert again == lines


def test_random_voxtral_probe_details(engine):
    backend, tokens = VoxtralTextBackend(engine), []
    backend.on_token = tokens.append
    result = run_probe(backend)
    assert len(result.details) == 8 and result.score < PASS_SCORE and not result.passed
    assert all(d.error is None for d in result.details) and len(tokens) > 8 * 16  # it really decoded
    assert result.date


def test_a_passed_probe_keeps_voxtral(engine, tmp_path):
    store = ProbeStore(tmp_path / "probes.json")
    store.put(model_key(engine), ProbeResult(0.875, True))
    lines: list[str] = []
    chosen = choose_voxtral_or_fallback(engine, store, lambda: pytest.fail("fell back"), lines.append)
    assert isinstance(chosen, VoxtralTextBackend) and chosen.capabilities.experimental
    assert chosen.model is engine.net and lines == []


def test_a_failing_fallback_says_both(engine, tmp_path):
    store = ProbeStore(tmp_path / "probes.json")
    store.put(model_key(engine), ProbeResult(0.125, False))

    def no_mlx():
        raise RewriteError("mlx-lm is not installed")

    with pytest.raises(RewriteError, match=r"failed its probe \(score 0\.12 < 0\.75\), and its fallback failed: "
                                           r"mlx-lm is not installed"):
        choose_voxtral_or_fallback(engine, store, no_mlx, lambda line: None)


def test_an_unusable_voxtral_falls_back_too(engine, tmp_path):
    class _BadDelay:
        model, default_delay_ms = engine.model, 100

        def text_decoder(self):
            return engine.net, engine.tokenizer

    lines: list[str] = []
    chosen = choose_voxtral_or_fallback(_BadDelay(), ProbeStore(tmp_path / "p.json"), _Fallback, lines.append)
    assert isinstance(chosen, _Fallback)
    assert len(lines) == 1 and lines[0].startswith("Voxtral text mode is unavailable (delay must be")
    assert lines[0].endswith("; using mlx instead")


# -- the store ------------------------------------------------------------------------------------


def test_store_round_trips_per_key(tmp_path):
    path = tmp_path / "data" / "probes.json"  # its folder is made on the first write
    store = ProbeStore(path)
    assert store.get("a") is None
    store.put("a", ProbeResult(0.5, False, date="2025-01-02T03:04:05+00:00"))
    store.put("b", ProbeResult(0.875, True))
    fresh = ProbeStore(path)
    a, b = fresh.get("a"), fresh.get("b")
    assert (a.score, a.passed, a.date, a.cached) == (0.5, False, "2025-01-02T03:04:05+00:00", True)
    assert (b.score, b.passed) == (0.875, True) and b.date
    assert fresh.get("c") is None
    data = json.loads(path.read_text())
    assert data["version"] == 1 and set(data["probes"]) == {"a", "b"}
    assert data["probes"]["a"]["probe"] == PROBE_VERSION
    assert not list(path.parent.glob("*.tmp"))


def test_store_is_keyed_per_model(engine, original_state, tmp_path):
    same = load_engine("voxtral", str(engine.model))
    assert model_key(same) == model_key(engine)
    other = load_engine("voxtral", str(tiny_voxtral(tmp_path / "other", original_state, 4096)))
    assert model_key(other) != model_key(engine)  # another folder
    q8 = load_engine("voxtral", str(engine.model), quantize_bits=8)
    assert model_key(q8) != model_key(engine)  # the same folder loaded to other weights
    store = ProbeStore(tmp_path / "probes.json")
    store.put(model_key(engine), ProbeResult(0.25, False))
    assert store.get(model_key(other)) is None and store.get(model_key(q8)) is None
    assert store.get(model_key(same)).score == 0.25


def test_probe_or_cached_runs_once(tmp_path):
    store, backend = ProbeStore(tmp_path / "probes.json"), _Chat()
    first = probe_or_cached(backend, store, "k")
    assert first.passed and not first.cached and backend.calls == 8  # one sentence at a time
    second = probe_or_cached(backend, store, "k")
    assert second.cached and second.score == first.score and backend.calls == 8


@pytest.mark.parametrize("content", [
    b"\x00\xff not json", b"{\"version\": 1, \"probes\": ", b"[]", b"null", b"{\"version\": 1, \"probes\": []}",
    b"{\"version\": 99, \"probes\": {\"k\": {\"score\": 1.0, \"passed\": true, \"date\": \"\", \"probe\": 1}}}",
    b"{\"version\": 1, \"probes\": {\"k\": {\"score\": \"high\", \"passed\": true, \"date\": \"\", \"probe\": 1}}}",
    b"{\"version\": 1, \"probes\": {\"k\": {\"score\": 7, \"passed\": true, \"date\": \"\", \"probe\": 1}}}",
    b"{\"version\": 1, \"probes\": {\"k\": {\"score\": 1.0, \"passed\": \"yes\", \"date\": \"\", \"probe\": 1}}}",
    b"{\"version\": 1, \"probes\": {\"k\": [1, true]}}",
], ids=["binary", "truncated", "list", "null", "probes-list", "store-version", "score-type", "score-range",
        "passed-type", "entry-list"])
def test_a_corrupt_store_reads_as_absent_and_is_rewritten(tmp_path, capsys, content):
    path = tmp_path / "probes.json"
    path.write_bytes(content)
    store = ProbeStore(path)
    assert store.get("k") is None
    result = probe_or_cached(_Chat(), store, "k")
    assert result.passed and not result.cached
    assert ProbeStore(path).get("k").score == 1.0
    out = capsys.readouterr()
    assert "Traceback" not in out.err + out.out


def test_an_older_probe_version_is_probed_again(tmp_path):
    path = tmp_path / "probes.json"
    path.write_text(json.dumps({"version": 1, "probes": {
        "k": {"score": 1.0, "passed": True, "date": "", "probe": PROBE_VERSION - 1}}}))
    assert ProbeStore(path).get("k") is None


def test_an_unwritable_store_is_noted_not_raised(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    store = ProbeStore(blocker / "probes.json")  # its folder would be a file
    result = probe_or_cached(_Chat(), store, "k")
    assert result.passed and store.error and "cannot save the probe score" in store.error
    assert store.get("k") is None
