"""Voxtral's experimental text mode on a tiny random Voxtral Realtime checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten

from asr.registry import load_engine
from asr.voxtral.tokenizer import TekkenTokenizer
from rewrite import voxtral_text
from rewrite.base import Message, RewriteError
from rewrite.voxtral_text import PromptFormat, VoxtralTextBackend
from tests.asr.audio_util import espeak_clips
from tests.asr.voxtral import conftest as voxtral_fixtures
from tests.asr.voxtral.conftest import _write_original
from tests.asr.voxtral.tekken_fixture import REALTIME_SPECIAL_RANKS, write_tiny_tekken

WIDE = 4096  # the tiny checkpoint's decoder window (32) is too short for a cleanup prompt

MESSAGES = [Message("system", "You clean up transcripts."),
            Message("user", "Clean up: um so we we need to uh ship the the release on friday")]

# The tiny checkpoint's session fixtures: another package's conftest is not visible here.
hf_voxtral_model = voxtral_fixtures.hf_voxtral_model
hf_voxtral_state = voxtral_fixtures.hf_voxtral_state
original_state = voxtral_fixtures.original_state


def tiny_voxtral(root: Path, original_state, window: int | None = None) -> Path:
    """The tiny random checkpoint in the original layout; `window` widens the decoder's
    attention window (its weights do not depend on it)."""
    folder = _write_original(root, original_state, bf16=False)
    if window is not None:
        params = json.loads((folder / "params.json").read_text())
        params["sliding_window"] = window
        (folder / "params.json").write_text(json.dumps(params))
    return folder


@pytest.fixture(scope="module")
def engine(original_state, tmp_path_factory):
    return load_engine("voxtral", str(tiny_voxtral(tmp_path_factory.mktemp("vt") / "wide", original_state, WIDE)))


@pytest.fixture(scope="module")
def backend(engine):
    return VoxtralTextBackend(engine)


def run(backend, messages=MESSAGES, max_tokens=24, temperature=0.0):
    """(text pieces, generated ids, ids generated when each piece arrived); the empty
    pieces of a chunked prefill are left out."""
    tokens: list[int] = []
    pieces: list[str] = []
    arrived: list[int] = []
    backend.on_token = tokens.append
    try:
        for piece in backend.complete(messages, max_tokens, temperature):
            if piece:
                pieces.append(piece)
                arrived.append(len(tokens))
    finally:
        backend.on_token = None
    return pieces, tokens, arrived


class _Forced:
    """The engine's model with logits that pick `script` tokens in order, then its own."""

    def __init__(self, model, script):
        self._model, self.script = model, list(script)

    def __getattr__(self, name):
        return getattr(self._model, name)

    def logits(self, hidden):
        out = self._model.logits(hidden)
        if not self.script:
            return out
        forced = np.full(out.shape, -1e9, np.float32)
        forced[..., self.script.pop(0)] = 0.0
        return mx.array(forced)


class _EngineWith:
    """A loaded engine whose text decoder is `model` (a wrapper of the engine's own)."""

    def __init__(self, engine, model):
        self.model, self.default_delay_ms, self._net, self._tok = engine.model, engine.default_delay_ms, model, \
            engine.tokenizer

    def text_decoder(self):
        return self._net, self._tok


# -- the backend ----------------------------------------------------------------------------


def test_capabilities_and_shared_weights(engine, backend):
    caps = backend.capabilities
    assert (backend.name, caps.backend, caps.experimental) == ("voxtral", "voxtral", True)
    assert caps.context_tokens == engine.config.decoder.sliding_window == WIDE
    model, tok = engine.text_decoder()
    assert backend.model is engine.net is model and backend.tokenizer is engine.tokenizer is tok
    mine, theirs = tree_flatten(backend.model.parameters()), tree_flatten(engine.net.parameters())
    assert [k for k, _ in mine] == [k for k, _ in theirs]
    assert all(a is b for (_, a), (_, b) in zip(mine, theirs))  # the very arrays: nothing copied


def test_delay_conditioning_is_the_engines_default(engine, backend):
    assert backend.delay_ms == engine.default_delay_ms == 480 and backend.n_delay == 6
    want = engine.net.ada_scales(6.0)
    assert all(mx.array_equal(a, b).item() for a, b in zip(backend._scales, want))
    assert not mx.any(backend._audio).item() and backend._audio.shape == (1, 1, engine.config.decoder.dim)


def test_text_mode_streams_pieces_as_it_decodes(engine, backend):
    pieces, tokens, arrived = run(backend, max_tokens=40)
    assert pieces and all(isinstance(p, str) and p for p in pieces)
    assert arrived[0] < len(tokens)  # the first piece came before the reply was done
    assert arrived == sorted(arrived)
    text = engine.tokenizer.decode(t for t in tokens if t not in backend.stop_ids)
    assert text in ("".join(pieces), "".join(pieces) + "\ufffd")  # a cut-off character is dropped


def test_greedy_is_deterministic(backend):
    first = run(backend, max_tokens=32)
    assert run(backend, max_tokens=32) == first
    assert run(backend, max_tokens=32, temperature=0.0)[0] == first[0]


def test_stops_at_max_tokens(backend):
    _, tokens, _ = run(backend, max_tokens=40)
    assert not set(tokens) & backend.stop_ids  # this prompt's greedy reply runs the whole budget
    for n in (1, 7, 40):
        _, got, _ = run(backend, max_tokens=n)
        assert got == tokens[:n]
    assert run(backend, max_tokens=0) == ([], [], [])


def test_a_long_prompt_is_prefilled_in_chunks_with_yield_points(engine, backend, monkeypatch):
    long = [Message("user", "Clean up: " + "um so we we need to uh ship the the release on friday " * 16)]
    n = len(backend.prompt_tokens(long))
    assert n > 2 * voxtral_text.PREFILL_CHUNK
    tokens: list[int] = []
    backend.on_token = tokens.append
    try:
        stream = backend.complete(long, 16)
        empties = 0
        for piece in stream:
            if piece:
                break
            assert not tokens  # yield points come before the first decoded token
            empties += 1
        assert empties == -(-n // voxtral_text.PREFILL_CHUNK) - 1
        rest = list(stream)
    finally:
        backend.on_token = None
    monkeypatch.setattr(voxtral_text, "PREFILL_CHUNK", 1 << 20)  # one call, no yield point
    whole = run(backend, long, max_tokens=16)
    assert tokens == whole[1] and "".join([piece, *rest]) == "".join(whole[0])


def test_stops_at_eos_and_at_a_new_turn(engine, backend):
    tok = engine.tokenizer
    words = tok.encode(" hello world")
    for stop in (tok.eos, tok.special_id("[INST]")):
        forced = VoxtralTextBackend(_EngineWith(engine, _Forced(engine.net, [*words, stop, *words])))
        pieces, tokens, _ = run(forced, max_tokens=20)
        assert tokens == [*words, stop] and "".join(pieces) == " hello world"


def test_control_tokens_never_reach_the_text(engine):
    tok = engine.tokenizer
    script = [tok.streaming_pad, *tok.encode(" ok"), tok.streaming_word, *tok.encode(" ok"), tok.eos]
    pieces, _, _ = run(VoxtralTextBackend(_EngineWith(engine, _Forced(engine.net, script))))
    assert "".join(pieces) == " ok ok"


def test_utf8_split_across_tokens_is_held_back(engine):
    tok = engine.tokenizer
    emoji = [tok.n_special + b for b in " 😀".encode()]  # one byte token per byte
    pieces, _, _ = run(VoxtralTextBackend(_EngineWith(engine, _Forced(engine.net, [*emoji, tok.eos]))))
    assert pieces == [" ", "😀"]
    cut, _, _ = run(VoxtralTextBackend(_EngineWith(engine, _Forced(engine.net, emoji))), max_tokens=3)
    assert cut == [" "]  # half a character at the budget is dropped, never shown as U+FFFD


def test_sampling_at_a_temperature(backend):
    mx.random.seed(3)
    pieces, tokens, _ = run(backend, max_tokens=16, temperature=1.0)
    assert 0 < len(tokens) <= 16 and all(isinstance(p, str) for p in pieces)


def test_count_tokens_uses_tekken(engine, backend):
    text = "Clean up: um so we we need to uh ship the release on friday 😀"
    assert backend.count_tokens(text) == len(engine.tokenizer.encode(text)) > 0
    assert backend.count_tokens("") == 0


def test_a_prompt_past_the_window_is_a_one_line_error(original_state, tmp_path):
    narrow = load_engine("voxtral", str(tiny_voxtral(tmp_path / "narrow", original_state)))
    backend = VoxtralTextBackend(narrow)
    assert backend.capabilities.context_tokens == 32
    with pytest.raises(RewriteError, match=r"takes \d+ tokens; Voxtral's text mode attends to 32"):
        backend.complete(MESSAGES, 8)  # raised at the call, before any piece is asked for
    short = [Message("user", "hello")]
    prompt = backend.prompt_tokens(short)
    _, tokens, _ = run(backend, short, max_tokens=100)
    assert len(tokens) <= 32 - len(prompt)  # the reply stops before the prompt slides out


def test_closed_backend_refuses(engine):
    backend = VoxtralTextBackend(engine)
    backend.close()
    with pytest.raises(RewriteError, match="closed"):
        backend.complete(MESSAGES, 4)
    assert engine.net.tok_embeddings.weight.size  # the engine's weights are untouched


# -- prompt format ---------------------------------------------------------------------------


def test_mistral_instruct_prompt_from_the_tokenizers_control_tokens(engine, backend):
    tok = engine.tokenizer
    sp = {n: tok.special_id(n) for n in ("[INST]", "[/INST]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]")}
    assert backend.format.style == "mistral"
    ids = backend.prompt_tokens(MESSAGES)
    assert ids == [tok.bos, sp["[SYSTEM_PROMPT]"], *tok.encode(MESSAGES[0].content), sp["[/SYSTEM_PROMPT]"],
                   sp["[INST]"], *tok.encode(MESSAGES[1].content), sp["[/INST]"]]
    turns = [Message("user", "a"), Message("assistant", "b"), Message("user", "c"), Message("assistant", "d")]
    assert backend.prompt_tokens(turns) == [tok.bos, sp["[INST]"], *tok.encode("a"), sp["[/INST]"], *tok.encode("b"),
                                            tok.eos, sp["[INST]"], *tok.encode("c"), sp["[/INST]"], *tok.encode("d")]
    with pytest.raises(RewriteError, match="role"):
        backend.prompt_tokens([Message("tool", "x")])
    with pytest.raises(RewriteError, match="no messages"):
        backend.complete([], 4)


def _tok(tmp_path: Path, drop: tuple[str, ...]) -> TekkenTokenizer:
    ranks = {k: v for k, v in REALTIME_SPECIAL_RANKS.items() if k not in drop}
    return TekkenTokenizer.from_file(write_tiny_tekken(tmp_path / "tekken.json", special_ranks=ranks).path)


def test_without_system_prompt_tokens_the_system_text_joins_the_user_turn(tmp_path):
    tok = _tok(tmp_path, ("[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]"))
    fmt = PromptFormat(tok)
    assert fmt.style == "mistral"
    ids = fmt.encode(MESSAGES)
    inst, end = tok.special_id("[INST]"), tok.special_id("[/INST]")
    assert ids == [tok.bos, inst, *tok.encode(f"{MESSAGES[0].content}\n\n{MESSAGES[1].content}"), end]


def test_without_inst_tokens_the_prompt_is_plain_text(tmp_path):
    tok = _tok(tmp_path, ("[INST]", "[/INST]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]"))
    fmt = PromptFormat(tok)
    assert fmt.style == "plain"
    ids = fmt.encode(MESSAGES)
    assert ids[0] == tok.bos and not any(tok.is_special(i) for i in ids[1:])
    assert tok.decode(ids) == (f"System: {MESSAGES[0].content}\n\nUser: {MESSAGES[1].content}\n\nAssistant:")


# -- beside a live ASR session -------------------------------------------------------------


def _asr(engine, audio, between=None):
    """Tokens and events of a session fed 80 ms at a time; `between(i)` runs after chunk i."""
    session = engine.start_session()
    tokens, events = [], []
    session.on_token = tokens.append
    for i, start in enumerate(range(0, len(audio), 1280)):
        session.feed_audio(audio[start : start + 1280])
        while not session.idle:
            events += session.step()
        if between is not None:
            between(i)
    events += session.finish()
    return tokens, events


def test_text_mode_leaves_a_running_asr_session_alone(engine, backend):
    audio = espeak_clips()[1][1]
    reference = _asr(engine, audio)
    alone = run(backend, max_tokens=24)

    replies: list[tuple] = []

    def whole_reply(i):  # a complete reply between two ASR steps, now and then
        if i % 10 == 5:
            replies.append(run(backend, max_tokens=24))

    assert _asr(engine, audio, whole_reply) == reference
    assert replies and all(r == alone for r in replies)  # and the ASR did not touch the text

    stream = backend.complete(MESSAGES, 24)
    pieces: list[str] = []

    def one_piece(i):  # a reply interleaved piece by piece with the ASR steps
        piece = next(stream, None)
        if piece:
            pieces.append(piece)

    assert _asr(engine, audio, one_piece) == reference
    pieces += [p for p in stream if p]
    assert pieces == alone[0]
