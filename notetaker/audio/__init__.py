"""Audio in: every source delivers 16 kHz mono float32 blocks in [-1, 1]."""

from .base import SAMPLE_RATE, AudioError, AudioSource
from .file import AudioFile, AudioInfo, open_audio, read_audio
from .file_source import FileSource

__all__ = [
    "SAMPLE_RATE",
    "AudioError",
    "AudioFile",
    "AudioInfo",
    "AudioSource",
    "FileSource",
    "open_audio",
    "read_audio",
]
