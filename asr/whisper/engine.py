"""The Whisper engine: model names → a loaded model → segment-style sessions."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from asr.base import (
    MAX_BEAM_SIZE,
    SAMPLE_RATE,
    WINDOWINGS,
    ASRError,
    Capabilities,
    Engine,
    MemoryEstimate,
    ModelNotFoundError,
    Session,
    SessionOptions,
)
from asr.runtime.checkpoint import expand_on_cpu
from asr.runtime.mlxrt import on_cpu, release_freed_memory
from asr.segmented import SegmentedSession, Span, Transcript
from asr.vocabulary import snapping
from asr.whisper.bundled import bundled_model_dir, is_bundled, verify_bundled
from asr.whisper.decoding import TIME_PRECISION, DecodingOptions, DecodingResult, WhisperDecoder
from asr.whisper.seek import SeekSession
from asr.whisper.spec import DEFAULT_MODEL, HUB_NAMES, LANGUAGES, working
from asr.whisper.tokenizer import WhisperTokenizer
from asr.whisper.weights import (
    build_model,
    default_tokenizer_file,
    dequantized,
    load_checkpoint,
)


def resolve_whisper(model: str | None, cache_dir: Path | None = None, allow_download: bool = True) -> Path:
    """A local folder for a model name, a local path or a hub repo id."""
    name = model or DEFAULT_MODEL
    path = Path(name).expanduser()
    if path.exists():
        return path
    if name == DEFAULT_MODEL:
        bundled = bundled_model_dir()
        if bundled is not None:
            return bundled
    repo = HUB_NAMES.get(name, name)
    if "/" not in repo:
        known = ", ".join(["tiny.en (bundled)", *sorted(HUB_NAMES)])
        raise ModelNotFoundError(f"unknown Whisper model {name!r}; known: {known}; or a local folder or hub repo id")
    from asr.runtime.hub import resolve_model

    return resolve_model(repo, cache_dir, allow_download)


class WhisperUtterances:
    """Adapts the decoder to the segmented session: one window, or a batch of them."""

    max_window_s = 30.0
    packs_utterances = True

    def __init__(self, decoder: WhisperDecoder, options: SessionOptions):
        self.decoder = decoder
        self.opts = decoding_options(options)
        self._tok = decoder.tok

    def _transcript(self, r: DecodingResult) -> Transcript:
        segs = tuple(Span(s.start, s.end, s.text.strip(), s.tokens) for s in r.segments)
        return Transcript(r.text.strip(), segs, r.flags, r.complete_until)

    def _heard_tokens(self, heard: tuple[Span, ...], timestamps: bool) -> list[int]:
        """Earlier finals as the decoder would have written them: with their timestamps
        (window seconds) when timestamps are on, so the model goes on sampling them."""
        out: list[int] = []
        tb, last = self._tok.timestamp_begin, int(round(self.max_window_s / TIME_PRECISION))
        for s in heard:
            text = list(s.tokens) or self._tok.encode(" " + s.text.strip())
            if timestamps:
                a = min(last, int(round(s.start / TIME_PRECISION)))
                b = min(last, max(a + 1, int(round(s.end / TIME_PRECISION))))
                out += [tb + a, *text, tb + b]
            else:
                out += text
        return out

    def decode(self, audio: np.ndarray, prefix: str, heard: tuple[Span, ...], timestamps: bool) -> Transcript:
        if audio.size < SAMPLE_RATE // 10:
            return Transcript("")
        opts = replace(self.opts, timestamps=timestamps, beam_size=1)
        prefix_ids = self._tok.encode(" " + prefix.strip()) if prefix.strip() else []
        feats = self.decoder.encode([audio])
        r = self.decoder.decode(feats, opts, [audio.size / SAMPLE_RATE], prefix=prefix_ids,
                                heard=self._heard_tokens(heard, timestamps))[0]
        return self._transcript(r)

    def decode_many(self, windows: list[np.ndarray]) -> list[Transcript]:
        feats = self.decoder.encode(windows)
        results = self.decoder.decode(feats, self.opts, [w.size / SAMPLE_RATE for w in windows])
        return [self._transcript(r) for r in results]


class WhisperEngine(Engine):
    name = "whisper"

    def __init__(self, model: str | None = None, *, cache_dir: Path | None = None,
                 allow_download: bool = True, quantize_bits: int | None = None):
        folder = resolve_whisper(model, cache_dir, allow_download)
        if is_bundled(folder):
            verify_bundled(folder)
        self.model = model or DEFAULT_MODEL
        self.folder = folder
        # CPU matmuls reach BLAS only in float32; GPUs run float16.
        dtype = mx.float32 if on_cpu() else mx.float16
        ckpt = load_checkpoint(folder, dtype=dtype)
        if on_cpu() and expand_on_cpu(ckpt.weights, ckpt.quantization):
            ckpt = dequantized(ckpt, consume=True)
        self.dims = ckpt.dims
        self.layout = ckpt.layout
        net = build_model(ckpt)
        if quantize_bits and not ckpt.quantization and not on_cpu():  # CPU: float32 is the fast path
            if quantize_bits not in (4, 8):
                raise ASRError("quantization must be 4 or 8 bits")
            nn.quantize(net, group_size=64, bits=quantize_bits,
                        class_predicate=lambda _, m: isinstance(m, nn.Linear) and m.weight.shape[-1] % 64 == 0)
        tok_file = ckpt.tokenizer_file or default_tokenizer_file(ckpt.dims.n_vocab, cache_dir, allow_download)
        self.tokenizer = WhisperTokenizer(tok_file, ckpt.dims.n_vocab)
        self.decoder = WhisperDecoder(net, self.tokenizer)
        self._weight_bytes = sum(v.nbytes for v in ckpt.weights.values())
        release_freed_memory()

    @property
    def capabilities(self) -> Capabilities:
        langs = tuple(self.tokenizer.language_ids) if self.tokenizer.multilingual else ("en",)
        return Capabilities(native_streaming=False, delay_control=False, word_timestamps=False,
                            rewrite_experimental=False, languages=langs)

    def memory_estimate(self) -> MemoryEstimate:
        from dataclasses import asdict

        kv, acts = working(asdict(self.dims), 4 if on_cpu() else 2)
        return MemoryEstimate(self._weight_bytes, kv + acts)

    def start_session(self, options: SessionOptions | None = None) -> Session:
        options = options or SessionOptions()
        if options.language and options.language not in LANGUAGES:
            raise ASRError(f"unknown language code {options.language!r}")
        if options.language and not self.tokenizer.multilingual and options.language != "en":
            raise ASRError(f"{self.model} is English-only; choose a multilingual model for {options.language!r}")
        check_decoding(options)
        if options.windowing == "seek":
            session = SeekSession(self.decoder, replace(decoding_options(options), vocabulary_timed=True))
        else:
            session = SegmentedSession(WhisperUtterances(self.decoder, options), options)
        # The snapper after the prompt: bench/vocabulary.py measured more names right and no
        # false ones on its control meeting.
        return snapping(session, options.vocabulary)


def decoding_options(options: SessionOptions) -> DecodingOptions:
    return DecodingOptions(language=options.language, beam_size=options.beam_size, vocabulary=options.vocabulary)


def check_decoding(options: SessionOptions) -> None:
    """Seek windowing and beam search are for files: refused live, in one line."""
    if options.windowing not in WINDOWINGS:
        raise ASRError(f"unknown windowing {options.windowing!r}; choose {' or '.join(WINDOWINGS)}")
    if not 1 <= options.beam_size <= MAX_BEAM_SIZE:
        raise ASRError(f"beam size must be 1 to {MAX_BEAM_SIZE}, not {options.beam_size}")
    if options.partials and (options.windowing != "vad" or options.beam_size != 1):
        raise ASRError("seek windowing and beam search are for files, not live transcription")
