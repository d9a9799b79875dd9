"""The ASR contract: what every engine promises, whatever its internals.

Behaviour is unified (session lifecycle, events, capabilities), internals are not:
Voxtral decodes one token per 80 ms frame, Whisper and Qwen3-ASR decode a buffered
utterance until EOS. Audio is always 16 kHz mono float32.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Union

import numpy as np

SAMPLE_RATE = 16_000

# Flags on a Final: suspected hallucination or low quality.
FLAG_REPETITION = "repetition"  # a repetition loop was detected (and cut)
FLAG_NO_SPEECH = "no_speech"  # the model thinks the window held no speech
FLAG_LOW_CONFIDENCE = "low_confidence"  # decoding failed the log-prob / compression guards


class ASRError(Exception):
    """A failure a user can cause or fix (unknown engine or model, bad weights): one line."""


class ModelNotFoundError(ASRError):
    pass


@dataclass(frozen=True)
class Capabilities:
    native_streaming: bool
    delay_control: bool
    word_timestamps: bool
    rewrite_experimental: bool
    languages: tuple[str, ...]
    context_biasing: bool = False  # SessionOptions.context steers recognition (names, jargon)


@dataclass(frozen=True)
class Word:
    text: str
    start: float
    end: float
    probability: float = 1.0


@dataclass(frozen=True)
class Partial:
    """The unstable tail of the transcript; replaces the previous partial. Never stored."""

    text: str
    start: float
    end: float


@dataclass(frozen=True)
class Final:
    """Committed text; never revised. Times are seconds from session start."""

    text: str
    start: float
    end: float
    words: tuple[Word, ...] = ()
    flags: tuple[str, ...] = ()


Event = Union[Partial, Final]


@dataclass(frozen=True)
class SessionOptions:
    language: str | None = None  # None: the engine's default or detection
    delay_ms: int | None = None  # streaming engines with delay control only
    context: str = ""  # biasing text (names, jargon) for engines that take it
    # Names and terms to get right (asr/vocabulary.py): in Whisper's prompt, Qwen3-ASR's
    # context, or snapped into the text of engines that take no hints.
    vocabulary: tuple[str, ...] = ()
    partials: bool = True  # False: offline transcription, finals only (cheaper)
    max_utterance_s: float = 30.0
    # Whisper, files only: "vad" packs the utterances the VAD finds into windows; "seek"
    # runs faster-whisper's loop (30 s windows advanced by the last timestamp).
    windowing: str = "vad"
    beam_size: int = 1  # Whisper, files only: beam search width (1: greedy)


WINDOWINGS = ("vad", "seek")
MAX_BEAM_SIZE = 16


def check_plain_decoding(options: SessionOptions, engine: str) -> None:
    """Engines without Whisper's windowing and beam search refuse them in one line."""
    if options.windowing != "vad" or options.beam_size != 1:
        raise ASRError(f"{engine} has no seek windowing or beam search (Whisper only)")


@dataclass(frozen=True)
class MemoryEstimate:
    weights_bytes: int
    runtime_bytes: int  # caches and activations at their bound

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.runtime_bytes


class Session(ABC):
    """One stream of audio. `feed_audio` may be called from any thread; `step` and
    `finish` belong to the one compute thread that owns all MLX work."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._chunks: list[np.ndarray] = []
        self._fed = 0  # samples fed so far

    def feed_audio(self, pcm: np.ndarray) -> None:
        """Append audio (16 kHz mono float32, any length). Cheap: no model work."""
        pcm = np.asarray(pcm, dtype=np.float32).reshape(-1)
        if pcm.size == 0:
            return
        with self._lock:
            self._chunks.append(pcm)
            self._fed += pcm.size

    def _take_audio(self) -> np.ndarray:
        """Everything fed since the last call, as one array (compute thread)."""
        with self._lock:
            chunks, self._chunks = self._chunks, []
        if not chunks:
            return np.zeros(0, dtype=np.float32)
        return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)

    def _has_pending_audio(self) -> bool:
        """Audio fed but not yet taken by the compute thread."""
        with self._lock:
            return bool(self._chunks)

    @property
    def fed_s(self) -> float:
        """Seconds of audio fed so far."""
        return self._fed / SAMPLE_RATE

    @property
    @abstractmethod
    def done_s(self) -> float:
        """Seconds of audio the latest events take into account; `fed_s - done_s` is the lag."""

    @property
    @abstractmethod
    def idle(self) -> bool:
        """True when `step` has nothing to do until more audio arrives (callers may wait)."""

    @abstractmethod
    def step(self) -> list[Event]:
        """Do a bounded amount of model work; returns new events (possibly none)."""

    @abstractmethod
    def finish(self) -> list[Event]:
        """Flush everything fed; the last events are finals. The session is then spent."""


class Engine(ABC):
    name: str = ""
    model: str = ""

    @property
    @abstractmethod
    def capabilities(self) -> Capabilities: ...

    @abstractmethod
    def memory_estimate(self) -> MemoryEstimate: ...

    @abstractmethod
    def start_session(self, options: SessionOptions | None = None) -> Session: ...
