"""The Qwen3-ASR engine: compact (0.6B), segment-style, with context biasing."""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx
import numpy as np

from asr.base import (
    SAMPLE_RATE,
    ASRError,
    Capabilities,
    Engine,
    MemoryEstimate,
    Session,
    SessionOptions,
    check_plain_decoding,
)
from asr.runtime.checkpoint import expand_on_cpu
from asr.runtime.mlxrt import on_cpu, release_freed_memory
from asr.qwen3.config import LANGUAGE_NAMES
from asr.qwen3.decoding import Qwen3Decoder
from asr.qwen3.spec import DEFAULT_MODEL, NAMES, SPEC, shape_of, working
from asr.qwen3.tokenizer import QwenTokenizer
from asr.qwen3.weights import build_model, dequantized, load_checkpoint
from asr.segmented import SegmentedSession, Transcript
from asr.vocabulary import snapping, with_context


def resolve_qwen3(model: str | None, cache_dir: Path | None = None, allow_download: bool = True) -> Path:
    from asr.runtime.hub import resolve_named

    return resolve_named(model, DEFAULT_MODEL, NAMES, "Qwen3-ASR", cache_dir, allow_download)


class Qwen3Utterances:
    """Adapts the decoder to the segmented session. Utterances are decoded one by one (the
    model gives no timestamps, so each final keeps its utterance's own times)."""

    max_window_s = 30.0
    packs_utterances = False

    def __init__(self, decoder: Qwen3Decoder, options: SessionOptions):
        self.decoder = decoder
        self.language = options.language
        self.context = with_context(options.context, options.vocabulary)

    def decode(self, audio: np.ndarray, prefix: str, heard: tuple, timestamps: bool) -> Transcript:
        # `heard` is always empty: utterances are not packed (no timestamps to place them).
        # The system turn carries the user's biasing context and vocabulary.
        if audio.size < SAMPLE_RATE // 10:
            return Transcript("")
        r = self.decoder.transcribe(audio, context=self.context, language=self.language, prefix=prefix)
        return Transcript(r.text, (), r.flags)

    def decode_many(self, windows: list[np.ndarray]) -> list[Transcript]:
        return [self.decode(w, "", (), False) for w in windows]


class Qwen3Engine(Engine):
    name = "qwen3"

    def __init__(self, model: str | None = None, *, cache_dir: Path | None = None, allow_download: bool = True,
                 quantize_bits: int | None = None):
        self.model = model or DEFAULT_MODEL
        folder = resolve_qwen3(model, cache_dir, allow_download)
        # CPU matmuls reach BLAS only in float32 (MLX's quantized CPU kernels are slow), so
        # quantized downloads are expanded where that fits; GPUs run the stored precision.
        ckpt = load_checkpoint(folder, dtype=mx.float32 if on_cpu() else None)
        if on_cpu() and quantize_bits is None and expand_on_cpu(ckpt.weights, ckpt.quantization):
            ckpt = dequantized(ckpt, consume=True)
        self.tokenizer = QwenTokenizer.from_folder(folder)
        _check_tokenizer(folder, self.tokenizer, ckpt.config)
        self.net = build_model(ckpt, quantize_bits=quantize_bits)
        self.config = ckpt.config
        self.layout = ckpt.layout
        self.folder = folder
        self.decoder = Qwen3Decoder(self.net, self.tokenizer)
        self._weight_bytes = sum(v.nbytes for v in ckpt.weights.values())
        release_freed_memory()

    @property
    def capabilities(self) -> Capabilities:
        return SPEC.capabilities

    def memory_estimate(self) -> MemoryEstimate:
        kv, acts = working(shape_of(self.config), 4 if on_cpu() else 2)
        return MemoryEstimate(self._weight_bytes, kv + acts)

    def start_session(self, options: SessionOptions | None = None) -> Session:
        options = options or SessionOptions()
        check_plain_decoding(options, "Qwen3-ASR")
        if options.language and options.language not in LANGUAGE_NAMES:
            raise ASRError(f"Qwen3-ASR does not support language {options.language!r}; "
                           f"it knows {', '.join(LANGUAGE_NAMES)}")
        # Context biasing first, then the snapper (as for Whisper, where it was measured).
        return snapping(SegmentedSession(Qwen3Utterances(self.decoder, options), options), options.vocabulary)


def _check_tokenizer(folder: Path, tok: QwenTokenizer, config) -> None:
    needed = {"<|im_start|>": None, "<|im_end|>": None, "<asr_text>": None,
              "<|audio_start|>": config.audio_start_token_id, "<|audio_end|>": config.audio_end_token_id,
              "<|audio_pad|>": config.audio_token_id}  # fmt: skip
    for content, expected in needed.items():
        got = tok.token_id(content)
        if got is None or (expected is not None and got != expected):
            raise ASRError(f"{folder}: the tokenizer's {content} does not match the model config")
    if tok.vocab_size > config.text.vocab_size:
        raise ASRError(f"{folder}: the tokenizer has more tokens than the model's embedding")
