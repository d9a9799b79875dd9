"""A test double for segment-style sessions: "speech" is a row of harmonic tone bursts,
each burst one word named by its pitch; the decoder reads the words back from audio."""

from __future__ import annotations

import numpy as np

from asr.segmented import Transcript

SR = 16000
BURST_S, GAP_S = 0.25, 0.1


def word_audio(pitch: int) -> np.ndarray:
    t = np.arange(int(BURST_S * SR)) / SR
    tone = sum(np.sin(2 * np.pi * pitch * k * t) / k for k in (1, 2, 3))
    return (0.3 * tone * np.hanning(t.size) ** 0.2).astype(np.float32)


def utterance_audio(pitches: list[int]) -> np.ndarray:
    gap = np.zeros(int(GAP_S * SR), np.float32)
    return np.concatenate([np.concatenate([word_audio(p), gap]) for p in pitches])


def word(pitch: int) -> str:
    return f"w{pitch}"


class ScriptedDecoder:
    max_window_s = 30.0
    packs_utterances = True

    def __init__(self):
        self.calls: list[dict] = []
        self.batches: list[list[float]] = []

    def _bursts(self, audio: np.ndarray) -> list[tuple[float, float, str]]:
        frame = 160
        n = len(audio) // frame
        energy = (audio[: n * frame].reshape(n, frame) ** 2).mean(axis=1)
        on = energy > 1e-4
        out, i = [], 0
        while i < n:
            if not on[i]:
                i += 1
                continue
            j = i
            while j < n and on[j]:
                j += 1
            seg = audio[i * frame : j * frame]
            if len(seg) >= 0.15 * SR:  # a cut-off burst at the end is not a word yet
                spec = np.abs(np.fft.rfft(seg * np.hanning(len(seg))))
                pitch = int(round(np.argmax(spec) * SR / len(seg) / 50.0) * 50)
                out.append((i * frame / SR, j * frame / SR, word(pitch)))
            i = j
        return out

    def decode(self, audio, prefix, heard, timestamps):
        # Like Whisper given earlier finals as its prefix: only the audio after them is read.
        skip = heard[-1].end - 0.05 if heard else 0.0
        bursts = [b for b in self._bursts(audio) if b[0] >= skip]
        self.calls.append({"seconds": len(audio) / SR, "prefix": prefix, "heard": [h.text for h in heard],
                           "timestamps": timestamps})
        return self._transcript(bursts) if timestamps else Transcript(" ".join(w for *_, w in bursts))

    def decode_many(self, windows):
        self.batches.append([len(w) / SR for w in windows])
        return [self._transcript(self._bursts(audio)) for audio in windows]

    @staticmethod
    def _transcript(bursts) -> Transcript:
        segs, cur = [], []
        for b in bursts:  # a segment per run of bursts without a long gap
            if cur and b[0] - cur[-1][1] > 0.3:  # words are 0.1 s apart, utterances >= 0.4 s
                segs.append(cur)
                cur = []
            cur.append(b)
        if cur:
            segs.append(cur)
        return Transcript(" ".join(w for *_, w in bursts),
                          tuple((s[0][0], s[-1][1], " ".join(w for *_, w in s)) for s in segs))
