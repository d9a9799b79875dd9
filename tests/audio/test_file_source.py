"""FileSource: the blocks of a file, handed over on a microphone's schedule when asked."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from notetaker.audio import SAMPLE_RATE, FileSource, open_audio, read_audio

from .conftest import synth

SECONDS = 20.0


class FakeClock:
    """A monotonic clock that moves only when slept on (plus any lateness we inject)."""

    def __init__(self, start: float = 1000.0, oversleep: float = 0.0) -> None:
        self.now = start
        self.oversleep = oversleep
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += seconds + self.oversleep


@pytest.fixture(scope="module")
def wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("source") / "talk.wav"
    return synth(path, rate=44100, channels=2, seconds=SECONDS, tones=[(440.0, 0.5), (1000.0, 0.25)],
                 encoding="s16")


def delivery_times(source: FileSource, clock: FakeClock, work_s: float = 0.0) -> list[float]:
    """When each block reached the consumer, which spends `work_s` on each."""
    times = []
    for _ in source:
        times.append(clock.now)
        clock.now += work_s
    return times


def test_delivers_the_whole_file_as_fast_as_it_can(wav: Path) -> None:
    clock = FakeClock()
    with open_audio(wav) as audio:
        source = FileSource(audio, block_s=0.1, clock=clock, sleep=clock.sleep)
        blocks = []
        positions = []
        for block in source:
            blocks.append(block)
            positions.append(source.position_s)
    assert not clock.sleeps
    np.testing.assert_array_equal(np.concatenate(blocks), read_audio(wav))
    assert all(len(b) == 1600 for b in blocks)
    assert positions == pytest.approx([0.1 * (k + 1) for k in range(len(blocks))])
    assert source.position_s == pytest.approx(SECONDS)
    assert source.sample_rate == SAMPLE_RATE


@pytest.mark.parametrize("speed", [1.0, 4.0])
def test_realtime_blocks_arrive_when_a_microphone_would_have_them(wav: Path, speed: float) -> None:
    clock = FakeClock()
    with open_audio(wav) as audio:
        source = FileSource(audio, block_s=0.5, realtime=True, speed=speed, clock=clock, sleep=clock.sleep)
        times = delivery_times(source, clock)
    # Block k (from 0) holds audio up to (k + 1) * 0.5 s: due then, sped up by `speed`.
    expected = [1000.0 + (k + 1) * 0.5 / speed for k in range(int(SECONDS / 0.5))]
    assert times == pytest.approx(expected, abs=1e-9)
    assert times[-1] - 1000.0 == pytest.approx(SECONDS / speed)


def test_no_drift_when_sleeps_overshoot_and_the_consumer_works(wav: Path) -> None:
    # Each sleep wakes 3 ms late and the consumer spends 20 ms per block: with fixed
    # sleeps of one block each, 200 blocks would end 4.6 s late.
    clock = FakeClock(oversleep=0.003)
    with open_audio(wav) as audio:
        source = FileSource(audio, block_s=0.1, realtime=True, clock=clock, sleep=clock.sleep)
        times = delivery_times(source, clock, work_s=0.02)
    lateness = [t - (1000.0 + (k + 1) * 0.1) for k, t in enumerate(times)]
    assert len(times) == 200
    assert max(lateness) <= 0.003 + 1e-9
    assert min(lateness) >= 0.0


def test_a_slow_consumer_gets_overdue_blocks_at_once_then_the_schedule_resumes(wav: Path) -> None:
    clock = FakeClock()
    with open_audio(wav) as audio:
        source = FileSource(audio, block_s=0.1, realtime=True, clock=clock, sleep=clock.sleep)
        times = []
        for k, _ in enumerate(source):
            times.append(clock.now)
            if k == 10:
                clock.now += 0.55  # one stall of five and a half blocks
    assert times[10] == pytest.approx(1001.1)
    # Blocks 11..15 were already due when asked for: no sleeping, no catching-up pause.
    assert times[11:16] == pytest.approx([1001.65] * 5)
    # From block 16 on, back on the original timeline, not shifted by the stall.
    assert times[16:] == pytest.approx([1000.0 + (k + 1) * 0.1 for k in range(16, 200)])


def test_position_counts_audio_delivered(wav: Path) -> None:
    clock = FakeClock()
    with open_audio(wav) as audio:
        source = FileSource(audio, block_s=0.3, realtime=True, speed=2.0, clock=clock, sleep=clock.sleep)
        assert source.position_s == 0.0
        seen = []
        for block in source:
            seen.append(source.position_s)
            # Audio delivered runs `speed` times ahead of the wall clock.
            assert source.position_s == pytest.approx(2.0 * (clock.now - 1000.0), abs=1e-9)
    assert seen[-1] == pytest.approx(SECONDS)
    assert len(block) == round(SECONDS * SAMPLE_RATE) % 4800  # the short last block


def test_iterating_again_starts_over(wav: Path) -> None:
    with FileSource.open(wav, block_s=1.0) as source:
        first = np.concatenate(list(source))
        assert source.position_s == pytest.approx(SECONDS)
        second = np.concatenate(list(source))
    np.testing.assert_array_equal(first, second)


def test_real_clock_paces_roughly(tmp_path: Path) -> None:
    path = synth(tmp_path / "short.wav", rate=16000, channels=1, seconds=1.0, tones=[(440.0, 0.5)],
                 encoding="s16")
    with FileSource.open(path, block_s=0.1, realtime=True, speed=10.0) as source:
        start = time.monotonic()
        n = sum(len(b) for b in source)
        elapsed = time.monotonic() - start
    assert n == SAMPLE_RATE
    assert 0.1 - 0.005 <= elapsed < 1.0  # 1 s of audio at 10x


@pytest.mark.parametrize("kwargs", [{"speed": 0.0}, {"speed": -1.0}, {"block_s": 0.0}])
def test_rejects_nonsense_options(wav: Path, kwargs: dict[str, float]) -> None:
    with open_audio(wav) as audio, pytest.raises(ValueError):
        FileSource(audio, **kwargs)  # type: ignore[arg-type]


def test_closes_the_file_it_opened_but_not_one_it_was_given(wav: Path) -> None:
    with FileSource.open(wav) as source:
        pass
    assert source.audio.closed
    with pytest.raises(ValueError, match="closed"):
        next(iter(source))
    with open_audio(wav) as audio:
        with FileSource(audio):
            pass
        assert not audio.closed
        assert len(next(audio.blocks())) == SAMPLE_RATE
