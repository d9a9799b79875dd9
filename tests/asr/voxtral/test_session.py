"""The streaming session: streaming == batch, one step per 80 ms, bounded state, endpoints."""

import numpy as np
import pytest

from asr.base import ASRError, Final, Partial, SessionOptions
from asr.registry import load_engine
from asr.voxtral.session import EndpointPolicy, VoxtralSession, offline_tokens

from ..audio_util import espeak_clips, silence


@pytest.fixture(scope="module")
def engine(voxtral_dirs):
    return load_engine("voxtral", str(voxtral_dirs["original"]))


@pytest.fixture(scope="module")
def speech():
    clips = espeak_clips()
    return np.concatenate([clips[0][1], silence(0.7), clips[1][1]])  # ~7 s


def run(session, audio, chunk):
    tokens, events = [], []
    session.on_token = tokens.append
    rng = np.random.default_rng(5)
    i = 0
    while i < len(audio):
        n = int(rng.integers(1, 4000)) if chunk == "random" else chunk
        session.feed_audio(audio[i : i + n])
        i += n
        while not session.idle:
            events += session.step()
    events += session.finish()
    return tokens, events


@pytest.mark.parametrize("chunk", [160, 1280, 16000, "random"], ids=["10ms", "80ms", "1s", "random"])
def test_streaming_emits_exactly_the_batch_tokens(engine, speech, chunk):
    reference = offline_tokens(engine.net, engine.tokenizer, speech, delay_ms=480)
    tokens, _ = run(engine.start_session(SessionOptions(delay_ms=480)), speech, chunk)
    assert tokens == reference


def test_one_decoder_step_per_80_ms(engine, speech):
    session = engine.start_session(SessionOptions(delay_ms=480))
    tokens, _ = run(session, speech, 1280)
    frames = -(-(len(speech) + 32 * 1280) // 1280) + 6 + 1 + 10  # left pad, audio, delay + right pad
    # the prompt is one prefill over 1 + 32 + 6 frames and yields one token
    assert len(tokens) == frames - (1 + 32 + 6) + 1


@pytest.mark.parametrize("delay_ms", [80, 960, 2400])
def test_any_delay_in_80_ms_steps_streams_like_batch(engine, speech, delay_ms):
    reference = offline_tokens(engine.net, engine.tokenizer, speech[: 16000 * 3], delay_ms=delay_ms)
    tokens, _ = run(engine.start_session(SessionOptions(delay_ms=delay_ms)), speech[: 16000 * 3], 1280)
    assert tokens == reference


@pytest.mark.parametrize("delay_ms", [0, 100, 2480, -80])
def test_bad_delays_are_one_line_errors(engine, delay_ms):
    with pytest.raises(ASRError, match="multiple of 80 ms"):
        engine.start_session(SessionOptions(delay_ms=delay_ms))


def test_long_stream_keeps_state_bounded_and_positions_rebased(voxtral_dirs):

    engine = load_engine("voxtral", str(voxtral_dirs["original"]))
    session = VoxtralSession(engine.net, engine.tokenizer, SessionOptions(delay_ms=480), rebase_at=400)
    block = np.concatenate([espeak_clips()[2][1], silence(1.0)])
    sizes, positions = [], []
    for minute in range(3):
        for _ in range(int(60 / (len(block) / 16000))):
            session.feed_audio(block)
            while not session.idle:
                session.step()
        sizes.append(sum(c.nbytes for c in session._caches) + sum(c.nbytes for c in session._audio.caches))
        positions.append(max(c.position for c in session._caches))
    assert sizes[-1] == sizes[0]  # reserved at their windows from the start, and never bigger
    assert all(c.keys.shape[2] == c.window for c in session._caches)
    assert max(positions) < 400 + 64  # re-based: positions never run away
    assert session._pos > 2000  # ~3 minutes of 80 ms steps really happened
    assert len(session._frames) == 0


def test_engine_capabilities_memory_and_shared_decoder(engine):
    caps = engine.capabilities
    assert caps.native_streaming and caps.delay_control and caps.rewrite_experimental
    est = engine.memory_estimate()
    cfg = engine.config.decoder
    assert est.runtime_bytes >= 2 * cfg.n_layers * cfg.sliding_window * cfg.n_kv_heads * cfg.head_dim * 2
    assert est.weights_bytes == sum(v.nbytes for _, v in __import__("mlx.utils").utils.tree_flatten(
        engine.net.parameters()))
    model, tok = engine.text_decoder()
    assert model is engine.net and tok is engine.tokenizer  # shared, not a second copy


# -- the endpoint policy, on a scripted model ------------------------------------------------


class _ScriptedModel:
    """Stands in for VoxtralRealtime: one adapter frame per 8 mel frames, and the decoder
    'predicts' the next token of a script (test double; tests only)."""

    class _Cfg:
        class audio:
            num_mel_bins, global_log_mel_max, sampling_rate, frame_rate, hop_length = 128, 1.5, 16000, 12.5, 160

        samples_per_token = 1280

    config = _Cfg()

    def __init__(self, script):
        self.script = list(script)
        self.calls = 0

    def new_audio_state(self, rebase_at=None):
        return {"pending": 0}

    def encode_audio(self, mel, state):
        import mlx.core as mx

        state["pending"] += mel.shape[1]
        n, state["pending"] = divmod(state["pending"], 8)
        return mx.zeros((1, n, 4))

    def make_caches(self, rebase_at=None, reserve=False):
        return []

    def ada_scales(self, delay):
        return []

    def embed(self, tokens):
        import mlx.core as mx

        return mx.zeros((*tokens.shape, 4))

    def decode(self, embeds, caches, scales):
        return embeds

    def logits(self, hidden):
        import mlx.core as mx

        token = self.script[self.calls] if self.calls < len(self.script) else 32
        self.calls += 1
        out = np.full((1, 1, 1024), -1.0, np.float32)
        out[0, 0, token] = 1.0
        return mx.array(out)


@pytest.fixture(scope="module")
def tiny_tok(tmp_path_factory):
    from asr.voxtral.tokenizer import TekkenTokenizer

    from .tekken_fixture import write_tiny_tekken

    return TekkenTokenizer.from_file(write_tiny_tekken(tmp_path_factory.mktemp("tk") / "tekken.json").path)


def _ids(tok, text):
    return tok.encode(text)


def _scripted_session(tok, script, **kw):
    return VoxtralSession(_ScriptedModel(script), tok, SessionOptions(delay_ms=480), **kw)


def test_a_pause_after_text_makes_a_final(tiny_tok):
    pad, word, eos = tiny_tok.streaming_pad, tiny_tok.streaming_word, tiny_tok.eos
    script = [pad] * 5 + [word] + _ids(tiny_tok, " hello") + [word] + _ids(tiny_tok, " world") + [pad] * 12 \
        + _ids(tiny_tok, " again") + [eos] + [pad] * 3 + _ids(tiny_tok, " more") + [pad] * 30
    _, events = run(_scripted_session(tiny_tok, script), silence(8.0), 1280)
    finals = [e for e in events if isinstance(e, Final)]
    assert [f.text for f in finals] == ["hello world", "again more"]  # EOS neither ends nor shows
    partials = [e.text for e in events if isinstance(e, Partial) and e.text]
    assert partials[:2] == ["hello", "hello world"]
    assert finals[0].start < finals[0].end <= finals[1].start
    assert all("[STREAMING" not in e.text and "<s>" not in e.text for e in events)


def test_a_long_utterance_is_cut_at_a_word_boundary(tiny_tok):
    words = []
    for _ in range(60):
        words += _ids(tiny_tok, " la") + [tiny_tok.streaming_pad] * 2  # 0.24 s a word, no pause
    session = _scripted_session(tiny_tok, words, endpoint=EndpointPolicy(pause_s=0.64, max_utterance_s=5.0))
    _, events = run(session, silence(len(words) * 0.08 + 2.0), 1280)  # room for the whole script
    finals = [e for e in events if isinstance(e, Final)]
    assert len(finals) >= 3
    assert all(f.end - f.start <= 5.0 + 0.3 for f in finals)
    assert " ".join(f.text for f in finals).split() == ["la"] * 60


def test_utf8_split_across_tokens_never_shows_half_a_character(tiny_tok):
    emoji = [tiny_tok.n_special + b for b in " 😀".encode()]  # one byte token per byte: split 4 ways
    assert tiny_tok.decode(emoji) == " 😀"
    _, events = run(_scripted_session(tiny_tok, [tiny_tok.streaming_pad] * 3 + emoji + [tiny_tok.streaming_pad] * 20),
                    silence(5.0), 1280)
    texts = [e.text for e in events if e.text]
    assert texts and all("\ufffd" not in t for t in texts)
    assert [e.text for e in events if isinstance(e, Final)] == ["😀"]


def test_voxtral_takes_no_hints_so_its_text_is_snapped(engine):
    from asr.vocabulary import SnappingSession

    s = engine.start_session(SessionOptions(vocabulary=("Kubernetes",), partials=False))
    assert isinstance(s, SnappingSession)
    assert s.inner.options.delay_ms == engine.default_delay_ms  # the default delay filled in, nothing lost
    assert (s.inner.options.vocabulary, s.inner.options.partials) == (("Kubernetes",), False)
    assert s.snap("the cuban eat ease cluster") == "the Kubernetes cluster"
    assert not isinstance(engine.start_session(SessionOptions()), SnappingSession)
