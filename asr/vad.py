"""Streaming energy/spectral voice-activity endpointing for segment-style engines.

Each 30 ms frame is speech when its energy stands clearly above an adaptive noise
floor (a low percentile of the last seconds) and it is not spectrally flat like
steady noise. Hysteresis, a minimum speech length and a silence hangover turn frames
into utterances; an utterance that reaches the maximum length is cut at the quietest
recent frame so words are not split.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from asr.base import SAMPLE_RATE


def as_frames(audio: np.ndarray, frame: int) -> np.ndarray:
    """The whole `frame`-sample frames of `audio`, one a row, as float64 (a tail is left out)."""
    n = len(audio) // frame
    return np.asarray(audio[: n * frame], dtype=np.float64).reshape(n, frame)


def frame_db(frames: np.ndarray) -> np.ndarray:
    """The energy of each frame (a row of `as_frames`) in dB: 10 log10 of its mean square."""
    return 10.0 * np.log10(np.mean(frames**2, axis=1) + 1e-12)


@dataclass(frozen=True)
class VadConfig:
    frame_s: float = 0.03
    onset_db: float = 12.0  # above the noise floor to start speech
    offset_db: float = 7.0  # below floor + this counts as silence again (hysteresis)
    loud_db: float = 22.0  # this far above the floor is speech however flat the spectrum
    max_flatness: float = 0.3  # steady noise is flat (pink ~0.45); speech frames ~0.01-0.15
    silence_dbfs: float = -62.0  # below this a frame is silence whatever the floor says
    min_speech_s: float = 0.3  # onset window
    hangover_s: float = 0.6  # silence that ends an utterance
    pad_s: float = 0.2  # audio kept before and after the speech
    max_utterance_s: float = 28.0
    floor_window_s: float = 6.0
    floor_percentile: float = 10.0


@dataclass(frozen=True)
class Utterance:
    start: float  # seconds from stream start, padding included
    end: float
    forced: bool = False  # cut at the maximum length rather than at a pause


class Endpointer:
    """Feed 16 kHz audio, get closed `Utterance`s; `open_start` is the one in progress."""

    def __init__(self, config: VadConfig | None = None):
        self.cfg = c = config or VadConfig()
        self.frame = int(round(c.frame_s * SAMPLE_RATE))
        self._pending = np.zeros(0, dtype=np.float32)
        self._n = 0  # frames processed
        self._energies: deque[float] = deque(maxlen=max(1, int(c.floor_window_s / c.frame_s)))
        self._recent: deque[float] = deque(maxlen=max(1, int(5.0 / c.frame_s)))  # for forced cuts
        self._onset: deque[tuple[int, bool, bool]] = deque(maxlen=max(1, int(c.min_speech_s / c.frame_s)))
        self._silence_run = 0
        self._in_speech = False
        self._start_s = 0.0  # start of the open utterance, padding included
        self._last_speech_frame = 0
        self._bins = self._band_bins()
        self._floor_value: float | None = None
        self._floor_age = 0
        # The first second is held back so the floor is known before deciding on it.
        self._warmup: list[tuple[float, float]] | None = []
        self._warmup_frames = max(1, int(1.0 / c.frame_s))

    def _band_bins(self) -> slice:
        freqs = np.fft.rfftfreq(self.frame, 1.0 / SAMPLE_RATE)
        idx = np.nonzero((freqs >= 200) & (freqs <= 4000))[0]
        return slice(int(idx[0]), int(idx[-1]) + 1)

    @property
    def processed_s(self) -> float:
        return self._n * self.cfg.frame_s

    @property
    def open_start(self) -> float | None:
        """Start of the utterance in progress (padding included), or None in silence."""
        return self._start_s if self._in_speech else None

    def feed(self, pcm: np.ndarray) -> list[Utterance]:
        x = np.concatenate([self._pending, np.asarray(pcm, dtype=np.float32).reshape(-1)])
        n_frames = len(x) // self.frame
        self._pending = x[n_frames * self.frame :]
        if n_frames == 0:
            return []
        frames = as_frames(x, self.frame)
        energy = frame_db(frames)
        spec = np.abs(np.fft.rfft(frames * np.hanning(self.frame), axis=1))[:, self._bins] ** 2 + 1e-20
        flatness = np.exp(np.mean(np.log(spec), axis=1)) / np.mean(spec, axis=1)
        out: list[Utterance] = []
        for e, f in zip(energy, flatness):
            if self._warmup is not None:
                self._warmup.append((float(e), float(f)))
                if len(self._warmup) >= self._warmup_frames:
                    self._end_warmup(out)
                continue
            self._frame(float(e), float(f), out)
        return out

    def _end_warmup(self, out: list[Utterance]) -> None:
        held, self._warmup = self._warmup or [], None
        self._energies.extend(e for e, _ in held)
        for e, f in held:
            self._frame(e, f, out, seen=True)

    def _floor(self) -> float:
        # The floor moves slowly: a percentile every 10 frames (0.3 s) is plenty and a
        # percentile per frame was the VAD's whole cost.
        if self._floor_age <= 0 or self._floor_value is None:
            self._floor_value = (float(np.percentile(self._energies, self.cfg.floor_percentile))
                                 if self._energies else self.cfg.silence_dbfs)
            self._floor_age = 10
        self._floor_age -= 1
        return self._floor_value

    def _frame(self, e: float, flat: float, out: list[Utterance], seen: bool = False) -> None:
        c = self.cfg
        above = e - self._floor()
        if not seen:
            self._energies.append(e)
        audible = e >= c.silence_dbfs
        active = audible and above > c.offset_db
        strong = audible and (above > c.loud_db or (above > c.onset_db and flat < c.max_flatness))
        i = self._n
        self._n += 1
        self._recent.append(e)
        self._onset.append((i, active, strong))
        if not self._in_speech:
            # Onset: most of the last frames active (syllables dip between them), one clearly speech.
            n_active = sum(a for _, a, _ in self._onset)
            if n_active >= 0.6 * self._onset.maxlen and any(s for _, _, s in self._onset):
                first = next(j for j, a, _ in self._onset if a)
                self._in_speech = True
                self._start_s = max(0.0, first * c.frame_s - c.pad_s)
                self._last_speech_frame = i
                self._silence_run = 0
            return
        if active:
            self._silence_run = 0
            self._last_speech_frame = i
        else:
            self._silence_run += 1
        if self._silence_run * c.frame_s >= c.hangover_s:
            out.append(self._close(self._last_speech_frame + 1, forced=False))
        elif (i + 1) * c.frame_s - self._start_s + c.pad_s >= c.max_utterance_s:
            self._cut_at_quietest(out)

    def _close(self, end_frame: int, forced: bool) -> Utterance:
        end = end_frame * self.cfg.frame_s + (0.0 if forced else self.cfg.pad_s)
        self._in_speech = False
        self._silence_run = 0
        self._onset.clear()
        return Utterance(self._start_s, min(end, self.processed_s), forced)

    def _cut_at_quietest(self, out: list[Utterance]) -> None:
        # Cut in the quietest frame of the last few seconds, then go on with a new utterance.
        recent = np.array(self._recent)
        tail = max(1, min(len(recent), int(3.0 / self.cfg.frame_s)))
        quiet = int(np.argmin(recent[-tail:]))
        cut = self._n - tail + quiet
        out.append(self._close(cut, forced=True))
        self._in_speech = True
        self._start_s = cut * self.cfg.frame_s
        self._last_speech_frame = self._n - 1

    def flush(self) -> list[Utterance]:
        """End of stream: close the utterance in progress."""
        if self._warmup is not None:
            out: list[Utterance] = []
            self._end_warmup(out)
            if out:
                return out + self.flush()
        if not self._in_speech:
            return []
        return [self._close(min(self._n, self._last_speech_frame + 1 + int(self.cfg.pad_s / self.cfg.frame_s)), forced=False)]
