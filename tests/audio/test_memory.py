"""A long file streams through a few blocks of memory, never whole."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from notetaker.audio import SAMPLE_RATE, open_audio

from .conftest import sox

MINUTES = 20
RATE = 48000
CHANNELS = 2


@pytest.fixture(scope="module")
def long_wav(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("long") / "meeting.wav"
    sox("-n", "-r", str(RATE), "-c", str(CHANNELS), "-b", "16", path,
        "synth", str(MINUTES * 60), "sine", "440", "sine", "1000", "remix", "1v0.5", "2v0.25")
    yield path
    path.unlink()  # 230 MB: do not leave it behind in pytest's kept temp folders


@pytest.mark.slow
@pytest.mark.parametrize("block_s", [0.25, 4.0])
def test_long_file_streams_in_bounded_memory(long_wav: Path, block_s: float) -> None:
    decoded_bytes = MINUTES * 60 * RATE * CHANNELS * 4  # the whole file as float32: 461 MB
    native_block_bytes = round(block_s * RATE) * CHANNELS * 4
    with open_audio(long_wav) as audio:
        tracemalloc.start()
        try:
            samples = 0
            for block in audio.blocks(block_s):
                samples += len(block)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert samples == MINUTES * 60 * SAMPLE_RATE
    # A few blocks, plus about 1 MB that cffi keeps (a cache that stops growing after
    # ~20k calls, measured): tied to the block size, nothing to the file's length.
    assert peak < 2 * 2**20 + 4 * native_block_bytes
    assert peak < decoded_bytes / 50
