"""Whisper decoding over one 30 s window (or a batch of them): greedy or sampled,
timestamp-token rules, and the usual guards — temperature fallback on a high
compression ratio or a low average log-probability, the no-speech probability, and a
repetition-loop detector that cuts a looping segment and flags it."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field, replace

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten

from asr.base import FLAG_LOW_CONFIDENCE, FLAG_NO_SPEECH, FLAG_REPETITION
from asr.features import window_mel
from asr.runtime.mlxrt import on_cpu
from asr.whisper.beam import beam_search, cut_loop, filter_for_rows, loop_cutter
from asr.whisper.model import Whisper
from asr.whisper.npdecoder import NumpyDecoder
from asr.whisper.tokenizer import WhisperTokenizer

TIME_PRECISION = 0.02  # seconds per timestamp token
VOCABULARY_SEGMENT_STEPS = 150  # a timed vocabulary reads as a 3 s segment


@dataclass(frozen=True)
class DecodingOptions:
    language: str | None = None
    task: str = "transcribe"
    temperatures: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    compression_ratio_threshold: float | None = 2.4
    logprob_threshold: float | None = -1.0
    no_speech_threshold: float | None = 0.6
    timestamps: bool = True
    max_initial_timestamp: float = 1.0
    suppress_blank: bool = True
    max_new_tokens: int | None = None  # default: half the text context (224)
    seed: int = 0
    beam_size: int = 1  # 1: greedy; more: beam search at temperature 0 (sampling stays single)
    patience: float = 1.0
    vocabulary: tuple[str, ...] = ()  # terms written before earlier text in the prompt
    # The vocabulary given as an earlier timestamped segment (seek windowing: its earlier
    # text is timestamped too; plain, the model stops writing timestamps and seek skips).
    vocabulary_timed: bool = False


@dataclass(frozen=True)
class Segment:
    start: float  # seconds within the window
    end: float
    text: str
    tokens: tuple[int, ...]


@dataclass(frozen=True)
class DecodingResult:
    tokens: tuple[int, ...]  # sampled tokens (text and timestamps), no EOT
    prefix: tuple[int, ...]  # forced tokens before them
    text: str  # prefix + sampled text
    segments: tuple[Segment, ...]  # the last one may be unfinished: see complete_until
    avg_logprob: float
    no_speech_prob: float
    temperature: float
    compression_ratio: float
    flags: tuple[str, ...] = ()
    # Window seconds up to which the segments are closed, when the last one is unfinished
    # (no closing timestamp): the audio after it wants another window. None: all closed.
    complete_until: float | None = None


def timestamp_pairs(tokens: list[int] | tuple[int, ...], timestamp_begin: int) -> tuple[list[int], bool]:
    """Where sampled tokens close one segment and open the next (the index of the second
    of each two timestamps in a row), and whether they end on a lone closing timestamp
    (text, then a timestamp: every segment closed), as faster-whisper splits them."""
    tb = timestamp_begin
    pairs = [i for i in range(1, len(tokens)) if tokens[i] >= tb and tokens[i - 1] >= tb]
    return pairs, len(tokens) >= 2 and tokens[-2] < tb <= tokens[-1]


def compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


@dataclass
class _Row:
    tokens: list[int] = field(default_factory=list)
    sum_logprob: float = 0.0
    done: bool = False
    looped: bool = False
    logprobs: list[float] = field(default_factory=list)  # of each of `tokens`


class _MlxSteps:
    """One decoding pass on the MLX model: numpy tokens in, numpy float32 logits out."""

    def __init__(self, model: Whisper, cross_kv) -> None:
        self.model, self.cross_kv, self.caches = model, cross_kv, model.new_caches()

    def __call__(self, tokens: np.ndarray) -> np.ndarray:
        logits = self.model.decoder(mx.array(tokens), self.cross_kv, self.caches)
        return np.array(logits, dtype=np.float32)


class WhisperDecoder:
    def __init__(self, model: Whisper, tokenizer: WhisperTokenizer, numpy_steps: bool | None = None):
        self.model = model
        self.tok = tokenizer
        if numpy_steps is None:
            numpy_steps = on_cpu() and not _quantized(model)
        self._np = NumpyDecoder(model.decoder) if numpy_steps else None
        self.n_text_ctx = model.dims.n_text_ctx
        v = model.dims.n_vocab
        self._suppress = np.zeros(v, dtype=bool)
        self._suppress[[t for t in tokenizer.suppress_tokens() if t < v]] = True
        self._blank = [tokenizer.encode(" ")[0], tokenizer.eot]
        self._text_mask = np.zeros(v, dtype=bool)
        self._text_mask[: tokenizer.eot] = True
        self._vocabulary_cache: dict[tuple[tuple[str, ...], int], list[int]] = {}

    def _steps(self, features: mx.array):
        kv = self.model.decoder.cross_kv(features)
        return self._np.start(kv) if self._np is not None else _MlxSteps(self.model, kv)

    # -- features -------------------------------------------------------------
    def encode(self, windows: list[np.ndarray]) -> mx.array:
        """Encoder output for up to-30 s windows of 16 kHz audio, batched."""
        mels = np.stack([window_mel(w, self.model.dims.n_mels) for w in windows])
        feats = self.model.encoder(mx.array(mels))
        mx.eval(feats)
        return feats

    def detect_language(self, features: mx.array) -> list[str]:
        if not self.tok.multilingual:
            return ["en"] * features.shape[0]
        codes = list(self.tok.language_ids)
        ids = np.array([self.tok.language_ids[c] for c in codes])
        sot = np.full((features.shape[0], 1), self.tok.sot, dtype=np.int64)
        logits = self._steps(features)(sot)[:, 0]
        return [codes[int(i)] for i in np.argmax(logits[:, ids], axis=-1)]

    # -- one decoding pass ------------------------------------------------------
    def _prompt(self, opts: DecodingOptions, language: str | None, context: list[int], forced: list[int]):
        """`<|startofprev|>` + vocabulary and context, the start-of-transcript tokens, then
        the forced tokens."""
        previous = self.previous_tokens(opts.vocabulary, context, opts.vocabulary_timed)
        prompt = [self.tok.sot_prev, *previous] if previous else []
        sot_index = len(prompt)
        prompt += self.tok.sot_sequence(language, opts.task)
        if not opts.timestamps:
            prompt.append(self.tok.no_timestamps)
        return prompt + forced, sot_index

    def previous_tokens(self, vocabulary: tuple[str, ...], context: list[int], timed: bool = False) -> list[int]:
        """What follows `<|startofprev|>`: the vocabulary, then the most recent earlier text,
        within Whisper's room for it (half the text context less one token). Earlier text
        keeps up to half the room; the vocabulary takes what else it needs, in whole terms,
        so a long meeting never pushes the names out (faster-whisper's initial prompt is)."""
        room = self.n_text_ctx // 2 - 1
        limit = room - min(len(context), room // 2)
        vocab = self.vocabulary_tokens(vocabulary, limit - 2 * timed) if vocabulary else []
        if vocab and timed:
            vocab = [self.tok.timestamp_begin, *vocab, self.tok.timestamp_begin + VOCABULARY_SEGMENT_STEPS]
        left = room - len(vocab)
        return vocab + (list(context[-left:]) if context and left > 0 else [])

    def vocabulary_tokens(self, terms: tuple[str, ...], limit: int) -> list[int]:
        """The prompt text of as many of the terms (in order) as fit in `limit` tokens.
        "Names: A B C." measured best on tiny.en: a comma list makes it write names in lists
        ("Anya, Will, deploy"), a bare list drops its punctuation."""
        key = (tuple(terms), limit)
        if key not in self._vocabulary_cache:
            def encode(k: int) -> list[int]:
                return self.tok.encode(" Names: " + " ".join(terms[:k]) + ".") if k else []

            low, high = 0, len(terms)  # the most terms that fit (BPE: tokens do not add up per term)
            while low < high:
                mid = (low + high + 1) // 2
                low, high = (mid, high) if len(encode(mid)) <= limit else (low, mid - 1)
            self._vocabulary_cache[key] = encode(low)
        return self._vocabulary_cache[key]

    def _filter(self, logits: np.ndarray, rows: list[_Row], opts: DecodingOptions,
                forced: list[int] | tuple[int, ...] = ()) -> None:
        """Apply suppression and timestamp rules in place to (batch, vocab) logits.

        The timestamp rules read the forced tokens (earlier segments given with their
        timestamps) as if sampled: the first new token opens a segment at or after them.
        """
        logits[:, self._suppress] = -np.inf
        if len(rows[0].tokens) == 0 and opts.suppress_blank:
            logits[:, self._blank] = -np.inf
        if not opts.timestamps:
            return
        tb = self.tok.timestamp_begin
        forced = list(forced)
        first = len(rows[0].tokens) == 0 and not forced
        logits[:, self.tok.no_timestamps] = -np.inf
        for k, row in enumerate(rows):
            seq = forced + row.tokens if forced else row.tokens
            last_ts = len(seq) >= 1 and seq[-1] >= tb
            penult_ts = len(seq) < 2 or seq[-2] >= tb
            if last_ts:
                if penult_ts:
                    logits[k, tb:] = -np.inf  # a pair closed: text must follow
                else:
                    logits[k, : self.tok.eot] = -np.inf  # a timestamp opened: no text
            stamps = [t for t in seq if t >= tb]
            if stamps:
                # Timestamps never decrease, and each segment has a nonzero length.
                last = stamps[-1] if (last_ts and not penult_ts) else stamps[-1] + 1
                logits[k, tb:last] = -np.inf
        if first:
            logits[:, :tb] = -np.inf
            last_allowed = tb + int(round(opts.max_initial_timestamp / TIME_PRECISION))
            logits[:, last_allowed + 1 :] = -np.inf
        # If timestamps together are more likely than any text token, emit a timestamp.
        logprobs = _log_softmax(logits)
        ts_lp = np.logaddexp.reduce(logprobs[:, tb:], axis=-1)
        text_lp = logprobs[:, :tb].max(axis=-1)
        logits[ts_lp > text_lp, :tb] = -np.inf

    def _run(self, features: mx.array, prompt: list[int], sot_index: int, opts: DecodingOptions,
             temperature: float, max_new: int, forced: list[int]) -> tuple[list[_Row], np.ndarray]:
        if temperature == 0 and opts.beam_size > 1:
            return self._run_beam(features, prompt, sot_index, opts, max_new, forced)
        b = features.shape[0]
        steps = self._steps(features)
        logits = steps(np.array([prompt] * b))
        no_speech = _softmax(logits[:, sot_index])[:, self.tok.no_speech]
        last = np.array(logits[:, -1])
        rows = [_Row() for _ in range(b)]
        rng = np.random.default_rng(opts.seed)
        for _ in range(max_new):
            self._filter(last, rows, opts, forced)
            if temperature == 0:
                nxt = last.argmax(axis=-1)
            else:
                probs = _softmax(last / temperature)
                nxt = np.array([rng.choice(probs.shape[1], p=p) for p in probs])
            logprobs = _log_softmax(last)
            for k, row in enumerate(rows):
                if row.done:
                    continue
                t = int(nxt[k])
                row.sum_logprob += float(logprobs[k, t])
                if t == self.tok.eot:
                    row.done = True
                    continue
                row.tokens.append(t)
                row.logprobs.append(float(logprobs[k, t]))
                cut = cut_loop(row.tokens, self.tok.eot)
                if cut is not None:
                    kept = len(cut[0])
                    del row.tokens[kept:], row.logprobs[kept:]
                    row.sum_logprob = sum(row.logprobs)  # what was cut off is not scored
                    row.done, row.looped = True, cut[1]
            if all(r.done for r in rows):
                break
            step = np.array([[r.tokens[-1] if r.tokens and not r.done else self.tok.eot] for r in rows])
            last = steps(step)[:, -1]
        return rows, no_speech

    def _run_beam(self, features: mx.array, prompt: list[int], sot_index: int, opts: DecodingOptions,
                  max_new: int, forced: list[int]) -> tuple[list[_Row], np.ndarray]:
        """Beam search, one window at a time, scored as CTranslate2 (faster-whisper) does."""
        rows, no_speech = [], []
        logit_filter = filter_for_rows(lambda lg, rs: self._filter(lg, rs, opts, forced), _Row)
        for i in range(features.shape[0]):
            steps = self._steps(features[i : i + 1])
            logits = steps(np.array([prompt]))
            no_speech.append(_softmax(logits[:, sot_index])[0, self.tok.no_speech])
            best = beam_search(steps, logits[:, -1], opts.beam_size, opts.patience, max_new,
                               self.tok.eot, logit_filter, cut_loop=loop_cutter(self.tok.eot))[0]
            rows.append(_Row(tokens=list(best.tokens), sum_logprob=best.sum_logprob, done=True, looped=best.looped))
        return rows, np.array(no_speech)

    # -- public -----------------------------------------------------------------
    def decode(self, features: mx.array, opts: DecodingOptions, durations: list[float],
               context: list[int] | None = None, prefix: list[int] | None = None,
               heard: list[int] | None = None) -> list[DecodingResult]:
        """Decode a batch of encoded windows with temperature fallback per window.

        `context`: tokens after `<|startofprev|>` (earlier text, with its timestamps when
        they were sampled with them). `heard`: tokens forced after the start of transcript
        that the window's audio begins with (earlier finals, timestamped in window time);
        they are not part of the result. `prefix`: forced text that is (committed words).
        """
        b = features.shape[0]
        languages = [opts.language] * b if opts.language or not self.tok.multilingual else self.detect_language(features)
        results: list[DecodingResult | None] = [None] * b
        given = (context or [], heard or [], prefix or [])
        # Windows that share a language decode together; fallback re-runs one window at a time.
        for lang in dict.fromkeys(languages):
            idx = [i for i in range(b) if languages[i] == lang]
            sub = features[mx.array(idx)] if len(idx) < b else features
            first = self._decode_at(sub, opts, lang, opts.temperatures[0], [durations[i] for i in idx], *given)
            for i, res in zip(idx, first):
                results[i] = res
            for i in idx:
                for temp in opts.temperatures[1:]:
                    if not self._needs_fallback(results[i], opts):
                        break
                    retry = self._decode_at(features[i : i + 1], opts, lang, temp, [durations[i]], *given)[0]
                    results[i] = self._better(results[i], retry, opts)
        return [self._finalise(r, opts) for r in results]

    def _decode_at(self, features, opts, language, temperature, durations, context, heard, prefix):
        forced = heard + prefix
        prompt, sot_index = self._prompt(opts, language, context, forced)
        max_new = opts.max_new_tokens or self.n_text_ctx // 2
        max_new = min(max_new, self.n_text_ctx - len(prompt))
        rows, no_speech = self._run(features, prompt, sot_index, opts, temperature, max_new, forced)
        tb = self.tok.timestamp_begin
        start = next(((t - tb) * TIME_PRECISION for t in reversed(heard) if t >= tb), 0.0)
        out = []
        for row, ns, dur in zip(rows, no_speech, durations):
            text = self.tok.decode(prefix + row.tokens)
            flags = (FLAG_REPETITION,) if row.looped else ()
            out.append(DecodingResult(
                tokens=tuple(row.tokens), prefix=tuple(prefix), text=text,
                segments=self._segments(row.tokens, prefix, dur, start),
                avg_logprob=row.sum_logprob / (len(row.tokens) + 1), no_speech_prob=float(ns),
                temperature=temperature, compression_ratio=compression_ratio(text), flags=flags,
                complete_until=self._complete_until(row.tokens) if opts.timestamps and not row.looped else None))
        return out

    def _complete_until(self, tokens: list[int]) -> float | None:
        """Where the closed segments end when the last one is unfinished, as faster-whisper
        seeks: a text token or a lone opening timestamp last means the window ended inside
        a segment; a closing timestamp last means every segment closed."""
        tb = self.tok.timestamp_begin
        pairs, single_ending = timestamp_pairs(tokens, tb)
        if single_ending or not pairs:
            return None
        return (tokens[pairs[-1] - 1] - tb) * TIME_PRECISION

    @staticmethod
    def _needs_fallback(r: DecodingResult, opts: DecodingOptions) -> bool:
        if opts.no_speech_threshold is not None and opts.logprob_threshold is not None:
            if r.no_speech_prob > opts.no_speech_threshold and r.avg_logprob < opts.logprob_threshold:
                return False  # silence: no retry will help
        if FLAG_REPETITION in r.flags:
            return True
        if opts.compression_ratio_threshold is not None and r.compression_ratio > opts.compression_ratio_threshold:
            return True
        return opts.logprob_threshold is not None and r.avg_logprob < opts.logprob_threshold

    @staticmethod
    def _better(a: DecodingResult, b: DecodingResult, opts: DecodingOptions) -> DecodingResult:
        # Keep the latest attempt unless it is worse on every guard.
        def bad(r):
            return (FLAG_REPETITION in r.flags) + (
                opts.compression_ratio_threshold is not None and r.compression_ratio > opts.compression_ratio_threshold)
        return b if (bad(b), -b.avg_logprob) <= (bad(a), -a.avg_logprob) or not WhisperDecoder._needs_fallback(b, opts) else a

    def _finalise(self, r: DecodingResult, opts: DecodingOptions) -> DecodingResult:
        flags = list(r.flags)
        silent = (opts.no_speech_threshold is not None and r.no_speech_prob > opts.no_speech_threshold
                  and (opts.logprob_threshold is None or r.avg_logprob < opts.logprob_threshold))
        if silent:
            flags.append(FLAG_NO_SPEECH)
        elif self._needs_fallback(r, opts):
            flags.append(FLAG_LOW_CONFIDENCE)
        if opts.no_speech_threshold is not None and r.no_speech_prob > opts.no_speech_threshold:
            # Confident text where the model also thinks nobody spoke ("you" on silence): suspect.
            flags.append(FLAG_NO_SPEECH)
        if silent:
            return DecodingResult((), r.prefix, "", (), r.avg_logprob, r.no_speech_prob, r.temperature, 0.0, tuple(flags))
        return replace(r, flags=tuple(dict.fromkeys(flags)))

    def _segments(self, tokens: list[int], prefix: list[int], duration: float,
                  start: float = 0.0) -> tuple[Segment, ...]:
        """Split sampled tokens at timestamp tokens into timed segments."""
        tb = self.tok.timestamp_begin
        segs: list[Segment] = []
        text = list(prefix)
        for t in tokens:
            if t >= tb:
                ts = (t - tb) * TIME_PRECISION
                if text:
                    segs.append(Segment(start, ts, self.tok.decode(text), tuple(text)))
                    text = []
                start = ts
            else:
                text.append(t)
        if text:
            segs.append(Segment(start, max(start, duration), self.tok.decode(text), tuple(text)))
        return tuple(s for s in segs if s.text.strip())


def _quantized(model: Whisper) -> bool:
    return any(k.endswith(".scales") for k, _ in tree_flatten(model.decoder.parameters()))


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _log_softmax(x: np.ndarray) -> np.ndarray:
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))
