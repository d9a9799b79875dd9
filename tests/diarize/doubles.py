"""Stand-ins for the diarization models (diarize.segmentation / diarize.embedding) that know
the truth of a synthetic meeting: each speaker is a pure tone of its own pitch, so who talks
in any stretch of audio can be read off its spectrum. They test the pipeline's logic (turns,
labels, clustering, splitting, holding finals), not the models: real-model accuracy is
bench/diarize.py's."""

from __future__ import annotations

import numpy as np

RATE = 16_000
PITCHES = (250.0, 400.0, 550.0, 700.0, 850.0, 1000.0)  # speaker i's tone, Hz
AMPLITUDE = 0.3

Turn = tuple[float, float, str]


def meeting(turns: list[Turn], seconds: float | None = None) -> np.ndarray:
    """Audio of `turns` (speaker names "A", "B", ... → PITCHES[0], [1], ...)."""
    end = seconds or max(e for _, e, _ in turns) + 0.5
    audio = np.zeros(int(round(end * RATE)), np.float32)
    for s, e, who in turns:
        a, b = int(round(s * RATE)), int(round(e * RATE))
        t = np.arange(a, b) / RATE
        audio[a:b] += AMPLITUDE * np.sin(2 * np.pi * PITCHES[ord(who) - ord("A")] * t).astype(np.float32)
    return audio


def alternating(speakers: str, seconds: float, turn_s: tuple[float, float] = (2.0, 6.0), gap_s: float = 0.3,
                seed: int = 0) -> list[Turn]:
    """Turns of `speakers` in a random order (never the same twice in a row) until `seconds`."""
    rng = np.random.default_rng(seed)
    out: list[Turn] = []
    t, last = 0.5, ""
    while t < seconds:
        who = rng.choice([s for s in speakers if s != last])
        d = float(rng.uniform(*turn_s))
        out.append((round(t, 3), round(min(t + d, seconds), 3), str(who)))
        t, last = t + d + gap_s, who
    return out


def _who(frames: np.ndarray) -> np.ndarray:
    """(frames, len(PITCHES)) bool: which tones sound in each frame of samples."""
    spec = np.abs(np.fft.rfft(frames * np.hanning(frames.shape[-1]), axis=-1))
    freqs = np.fft.rfftfreq(frames.shape[-1], 1 / RATE)
    bins = [int(np.argmin(np.abs(freqs - p))) for p in PITCHES]
    level = np.stack([spec[..., b - 1:b + 2].max(-1) for b in bins], -1)
    return level > 0.05 * frames.shape[-1] * AMPLITUDE / 4


class ToneSegmenter:
    """(frames, 3) activity of up to three local speakers per window, pyannote's frame timing;
    local speaker k is the k-th voice to appear in the window, of the three that appear last (so,
    as with the real model, a speaker's local index changes from window to window)."""

    frame_step = 270 / RATE
    frame_duration = 991 / RATE
    frame_start = 0.0

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, window: np.ndarray) -> np.ndarray:
        self.calls += 1
        size, step = 991, 270
        n = (len(window) - size) // step + 1
        idx = np.arange(size)[None, :] + step * np.arange(n)[:, None]
        who = self._heard(_who(window[idx]))
        out = np.zeros((n, 3), np.float32)
        first = [int(np.argmax(who[:, s])) if who[:, s].any() else -1 for s in range(len(PITCHES))]
        heard = sorted((f, s) for s, f in enumerate(first) if f >= 0)[-3:]  # the three latest voices
        order = [s for _, s in heard]
        for k, s in enumerate(order):
            out[:, k] = who[:, s]
        return out

    def _heard(self, who: np.ndarray) -> np.ndarray:
        """(frames, len(PITCHES)) which voices the model hears in each frame: all of them."""
        return who


class ToneEmbedder:
    """A fixed random unit vector per speaker (by the loudest tone of the clip), plus noise;
    `confused`: {speaker index: (other, n)}: the first n clips of a speaker come back as the
    other's voice, a mistake for the offline pass to fix."""

    def __init__(self, noise: float = 0.1, seed: int = 1, confused: dict[int, tuple[int, int]] | None = None):
        rng = np.random.default_rng(seed)
        self.voices = rng.normal(size=(len(PITCHES), 192)).astype(np.float32)
        self.rng = np.random.default_rng(seed + 1)
        self.noise = noise
        self.confused = confused or {}
        self.calls = 0
        self.heard: dict[int, int] = {}  # speaker → clips embedded
        self.clip_s: list[float] = []

    def speaker(self, clip: np.ndarray) -> int:
        spec = np.abs(np.fft.rfft(clip))
        freqs = np.fft.rfftfreq(len(clip), 1 / RATE)
        return int(np.argmin([abs(freqs[np.argmax(spec)] - p) for p in PITCHES]))

    def __call__(self, clip: np.ndarray) -> np.ndarray:
        self.calls += 1
        self.clip_s.append(len(clip) / RATE)
        s = self.speaker(clip)
        self.heard[s] = self.heard.get(s, 0) + 1
        other, until = self.confused.get(s, (s, 0))
        if self.heard[s] <= until:
            s = other
        v = self.voices[s] / np.linalg.norm(self.voices[s])
        return (v + self.noise * self.rng.normal(size=v.shape) / np.sqrt(v.size)).astype(np.float32)


def run_online(diarizer, audio: np.ndarray, block_s: float = 0.5) -> list[Turn]:
    """Feed `audio` in blocks as a recording would, stepping whenever a hop is ready."""
    block = int(block_s * RATE)
    for i in range(0, len(audio), block):
        diarizer.feed(audio[i:i + block])
        while diarizer.ready:
            diarizer.step()
    diarizer.finish()
    return list(diarizer.turns)


class MergingSegmenter(ToneSegmenter):
    """ToneSegmenter that hears the voices in `alike` (speaker indices) as one local speaker,
    the real model's mistake with two alike voices and a short pause between them."""

    def __init__(self, alike: tuple[int, ...]) -> None:
        super().__init__()
        self.alike = alike

    def _heard(self, who: np.ndarray) -> np.ndarray:
        who = who.copy()
        who[:, self.alike[0]] = who[:, list(self.alike)].any(1)
        who[:, list(self.alike[1:])] = False
        return who
