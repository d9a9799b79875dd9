"""Experimental: the Voxtral Realtime decoder as a text-only language model.

The streaming ASR feeds its decoder `adapter[t] + embed(previous token)` at every step, with
every FFN norm scaled for the transcription delay (see asr/voxtral/session.py). Text mode
feeds `0 + embed(token)`: a ZERO audio embedding (no audio at all, not the adapter's frame of
silence) and the same delay conditioning the engine transcribes with (its default delay, 480
ms -> 6 tokens), through the very `VoxtralRealtime` the engine holds: no weight is copied.

Nobody, Mistral included, has shown that this decoder follows instructions without audio,
so `rewrite.probe` measures it before it is used (and falls back to `mlx` when it fails).

Prompt: Mistral's instruct format from the tokenizer's own control tokens when it has them
(`<s>[SYSTEM_PROMPT]...[/SYSTEM_PROMPT][INST]...[/INST]`; the Realtime tekken.json keeps
these legacy ids), plain "System: / User: / Assistant:" text otherwise. Generation is greedy
(sampled at temperature > 0) on decoder caches of its own, made per `complete` call, so it
can run on the compute thread between the steps of a live ASR session without touching that
session's state. A long prompt is prefilled in chunks with an empty piece between them: the
points where that thread may run an ASR step. The reply stops at EOS, at a control token
that opens a new turn, at `max_tokens`, or where the prompt would start to slide out of the
decoder's attention window.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import mlx.core as mx

from asr.base import ASRError
from asr.voxtral.spec import delay_tokens
from asr.voxtral.tokenizer import StreamDecoder, TekkenTokenizer
from rewrite.backend import BackendOptions, BackendSpec, RewriteBackend
from rewrite.base import Capabilities, Message, RewriteError
from rewrite.probe import ProbeStore, first_line, model_key, probe_or_cached

if TYPE_CHECKING:
    from asr.voxtral.engine import VoxtralEngine
    from asr.voxtral.model import VoxtralRealtime

INST, INST_END = "[INST]", "[/INST]"
SYSTEM, SYSTEM_END = "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]"
# Control tokens after which a reply is over: a new turn would start.
TURN_TOKENS = ("<s>", INST, SYSTEM)
# Prompt tokens per decoder call; between calls `complete` yields "" so that a caller
# interleaving ASR steps gets the thread back within one chunk's work.
PREFILL_CHUNK = 256


def _special(tok: TekkenTokenizer, name: str) -> int | None:
    try:
        return tok.special_id(name)
    except ASRError:
        return None


class PromptFormat:
    """Chat messages -> prompt token ids for one tekken tokenizer."""

    def __init__(self, tok: TekkenTokenizer):
        self.tok = tok
        self.inst = _special(tok, INST)
        self.inst_end = _special(tok, INST_END)
        self.system = _special(tok, SYSTEM)
        self.system_end = _special(tok, SYSTEM_END)

    @property
    def style(self) -> str:
        """"mistral" ([INST] control tokens) or "plain" (role names in text)."""
        return "mistral" if self.inst is not None and self.inst_end is not None else "plain"

    def encode(self, messages: Sequence[Message]) -> list[int]:
        if not messages:
            raise RewriteError("nothing to complete: no messages")
        for m in messages:
            if m.role not in ("system", "user", "assistant"):
                raise RewriteError(f"unknown message role {m.role!r}; use system, user or assistant")
        return self._mistral(messages) if self.style == "mistral" else self._plain(messages)

    def _mistral(self, messages: Sequence[Message]) -> list[int]:
        tok = self.tok
        assert self.inst is not None and self.inst_end is not None
        ids = [tok.bos]
        pending_system: list[str] = []  # without [SYSTEM_PROMPT]: folded into the next user turn
        for i, m in enumerate(messages):
            if m.role == "system":
                if self.system is not None and self.system_end is not None:
                    ids += [self.system, *tok.encode(m.content), self.system_end]
                else:
                    pending_system.append(m.content)
            elif m.role == "user":
                content = "\n\n".join([*pending_system, m.content])
                pending_system = []
                ids += [self.inst, *tok.encode(content), self.inst_end]
            else:
                ids += tok.encode(m.content)
                if i < len(messages) - 1:  # a last assistant message is continued, not closed
                    ids.append(tok.eos)
        if pending_system:  # system text after the last user turn: a turn of its own
            ids += [self.inst, *tok.encode("\n\n".join(pending_system)), self.inst_end]
        return ids

    def _plain(self, messages: Sequence[Message]) -> list[int]:
        parts = [f"{m.role.capitalize()}: {m.content}" for m in messages]
        text = "\n\n".join(parts)
        if messages[-1].role != "assistant":
            text += "\n\nAssistant:"
        return [self.tok.bos, *self.tok.encode(text)]


class VoxtralTextBackend(RewriteBackend):
    """Text-only continuation of a loaded Voxtral engine's decoder (experimental)."""

    name = "voxtral"

    def __init__(self, engine: VoxtralEngine, delay_ms: int | None = None):
        model, tok = engine.text_decoder()
        self.model: VoxtralRealtime = model  # the engine's own modules: shared, never copied
        self.tokenizer: TekkenTokenizer = tok
        self.model_name = str(engine.model)
        self.delay_ms = int(engine.default_delay_ms if delay_ms is None else delay_ms)
        try:
            self.n_delay = delay_tokens(self.delay_ms)
        except ASRError as e:
            raise RewriteError(str(e)) from None
        self.window = int(model.config.decoder.sliding_window)
        self.format = PromptFormat(tok)
        self.stop_ids = frozenset({tok.eos} | {i for n in TURN_TOKENS if (i := _special(tok, n)) is not None})
        # Read-only after this: per-layer FFN-norm multipliers for the delay, and the zero
        # audio frame added to every text embedding.
        self._scales = model.ada_scales(float(self.n_delay))
        self._audio = mx.zeros((1, 1, model.config.decoder.dim), model.dtype)
        self.on_token: Callable[[int], Any] | None = None  # each generated id, for tests and tools
        self._closed = False

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(backend=self.name, model=self.model_name, context_tokens=self.window,
                            experimental=True)

    def count_tokens(self, text: str) -> int:
        try:
            return len(self.tokenizer.encode(text))
        except ASRError as e:
            raise RewriteError(str(e)) from None

    def prompt_tokens(self, messages: Sequence[Message]) -> list[int]:
        """The ids `complete` feeds for `messages` (BOS and control tokens included)."""
        try:
            return self.format.encode(messages)
        except ASRError as e:
            raise RewriteError(str(e)) from None

    def complete(self, messages: Sequence[Message], max_tokens: int, temperature: float = 0.0) -> Iterator[str]:
        """Stream the reply; the prompt is checked now, the decoder runs as pieces are taken."""
        if self._closed:
            raise RewriteError("the voxtral text backend is closed")
        prompt = self.prompt_tokens(messages)
        if len(prompt) >= self.window:
            raise RewriteError(f"the prompt takes {len(prompt)} tokens; Voxtral's text mode attends to "
                               f"{self.window} (shorten the input)")
        budget = max(0, min(int(max_tokens), self.window - len(prompt)))
        return self._generate(prompt, budget, float(temperature))

    def _inputs(self, ids: list[int]) -> mx.array:
        """Decoder inputs: each token's embedding plus a zero audio embedding."""
        return self.model.embed(mx.array([ids])) + self._audio

    def _pick(self, hidden: mx.array, temperature: float) -> int:
        logits = self.model.logits(hidden[:, -1:])[0, -1]
        if temperature <= 0.0:
            return int(mx.argmax(logits).item())
        return int(mx.random.categorical(logits.astype(mx.float32) / temperature).item())

    def _generate(self, prompt: list[int], budget: int, temperature: float) -> Iterator[str]:
        if budget == 0:
            return
        model = self.model
        caches = model.make_caches()  # this reply's own, grown as needed; dropped with it
        stream = StreamDecoder(self.tokenizer)
        for start in range(0, len(prompt), PREFILL_CHUNK):
            if start:
                yield ""  # a yield point: the caller may run an ASR step between chunks
            hidden = model.decode(self._inputs(prompt[start : start + PREFILL_CHUNK]), caches, self._scales)
        for n in range(budget):
            token = self._pick(hidden, temperature)
            if self.on_token is not None:
                self.on_token(token)
            if token in self.stop_ids:
                break
            piece = stream.push(token)  # "" for control tokens and half characters
            if piece:
                yield piece
            if n + 1 < budget:
                hidden = model.decode(self._inputs([token]), caches, self._scales)
        # Bytes of a character cut off by the budget are dropped, not shown as U+FFFD.

    def close(self) -> None:
        """Stop answering; the weights stay with the engine, which frees them."""
        self._closed = True
        self._scales = []


def choose_voxtral_or_fallback(engine: VoxtralEngine, store: ProbeStore, make_fallback: Callable[[], RewriteBackend],
                               report: Callable[[str], Any]) -> RewriteBackend:
    """Voxtral's text mode when its probe passes (run now or read from `store`); otherwise
    `make_fallback()` (the spec's fallback backend), with one line through `report` saying why."""
    try:
        backend = VoxtralTextBackend(engine)
        result = probe_or_cached(backend, store, model_key(engine))
    except RewriteError as e:
        why = f"is unavailable ({first_line(e)})"
    else:
        if result.passed:
            return backend
        backend.close()
        why = f"failed its probe ({result.line()})"
    try:
        fallback = make_fallback()
    except RewriteError as e:
        raise RewriteError(f"Voxtral text mode {why}, and its fallback failed: {first_line(e)}") from None
    report(f"Voxtral text mode {why}; using {fallback.name or 'mlx'} instead")
    return fallback


def _build(options: BackendOptions) -> RewriteBackend:
    engine = options.voxtral_engine
    if engine is None:
        from asr.voxtral.engine import VoxtralEngine

        try:
            engine = VoxtralEngine(options.voxtral_model, cache_dir=options.cache_dir,
                                   allow_download=options.allow_download)
        except ASRError as e:
            raise RewriteError(f"the voxtral backend needs the Voxtral model: {e}") from None
    assert options.probe_path is not None and options.fallback is not None  # the registry sees to both
    return choose_voxtral_or_fallback(engine, ProbeStore(options.probe_path), options.fallback, options.report)


SPEC = BackendSpec(name="voxtral", summary="experimental: the loaded Voxtral ASR decoder as a text-only model",
                   build=_build, needs={"probe_path": "a place to keep its probe score"}, fallback="mlx")
