"""The Voxtral Mini 4B Realtime engine: natively streaming, delay 80-2400 ms."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import mlx.core as mx

from asr.base import (
    ASRError,
    Capabilities,
    Engine,
    MemoryEstimate,
    ModelNotFoundError,
    Session,
    SessionOptions,
    check_plain_decoding,
)
from asr.runtime.checkpoint import expand_on_cpu
from asr.runtime.mlxrt import on_cpu, release_freed_memory
from asr.voxtral.model import VoxtralRealtime
from asr.voxtral.session import VoxtralSession
from asr.voxtral.spec import DEFAULT_DELAY_MS, delay_tokens
from asr.voxtral.spec import DEFAULT_MODEL, LANGUAGES, NAMES, SPEC, shape_of, working
from asr.voxtral.tokenizer import TekkenTokenizer
from asr.voxtral.weights import build_model, dequantized, load_checkpoint
from asr.vocabulary import snapping


def resolve_voxtral(model: str | None, cache_dir: Path | None = None, allow_download: bool = True) -> Path:
    from asr.runtime.hub import resolve_named

    return resolve_named(model, DEFAULT_MODEL, NAMES, "Voxtral", cache_dir, allow_download)


class VoxtralEngine(Engine):
    name = "voxtral"

    def __init__(self, model: str | None = None, *, cache_dir: Path | None = None, allow_download: bool = True,
                 quantize_bits: int | None = None):
        self.model = model or DEFAULT_MODEL
        self.folder = folder = resolve_voxtral(model, cache_dir, allow_download)
        # CPU matmuls reach BLAS only in float32 (and MLX's quantized CPU kernels are slow);
        # GPUs run the stored precision.
        ckpt = load_checkpoint(folder, dtype=mx.float32 if on_cpu() else None)
        if on_cpu() and quantize_bits is None and expand_on_cpu(ckpt.weights, ckpt.quantization):
            ckpt = dequantized(ckpt, consume=True)
        if ckpt.tokenizer_file is None:
            raise ModelNotFoundError(f"{folder} has no tekken.json tokenizer")
        self.tokenizer = TekkenTokenizer.from_file(ckpt.tokenizer_file)
        self.net = build_model(ckpt, quantize_bits=quantize_bits)
        self.config = ckpt.config
        self.layout = ckpt.layout
        self._weight_bytes = sum(v.nbytes for v in ckpt.weights.values())
        release_freed_memory()
        audio = self.tokenizer.audio or {}
        self.left_pad_tokens = int(audio.get("streaming_n_left_pad_tokens", 32))
        self.default_delay_ms = int(audio.get("transcription_delay_ms", DEFAULT_DELAY_MS))

    @property
    def capabilities(self) -> Capabilities:
        return SPEC.capabilities

    def memory_estimate(self) -> MemoryEstimate:
        """Weights plus both KV caches at their sliding-window bounds (they never grow past)
        and the activations of a step."""
        kv, acts = working(shape_of(self.config), 4 if on_cpu() else 2)
        return MemoryEstimate(self._weight_bytes, kv + acts)

    def text_decoder(self) -> tuple[VoxtralRealtime, TekkenTokenizer]:
        """The loaded decoder and tokenizer, shared (not copied) with the experimental
        text-only rewrite mode: it embeds text with `model.embed`, adds a zero audio frame,
        and steps `model.decode` / `model.logits` on caches of its own."""
        return self.net, self.tokenizer

    def start_session(self, options: SessionOptions | None = None) -> Session:
        options = options or SessionOptions()
        check_plain_decoding(options, "Voxtral")
        if options.delay_ms is None:
            options = replace(options, delay_ms=self.default_delay_ms)
        delay_tokens(options.delay_ms)  # validates before anything starts
        if options.language and options.language not in LANGUAGES:
            raise ASRError(f"Voxtral does not support language {options.language!r}; it knows {', '.join(LANGUAGES)}")
        # Voxtral takes no hints: listed terms are snapped into its finals afterwards.
        return snapping(VoxtralSession(self.net, self.tokenizer, options, left_pad_tokens=self.left_pad_tokens),
                        options.vocabulary)
