"""Transcript cleanup and summaries. Imports nothing from `notetaker`."""

import asr  # noqa: F401  (loads OpenBLAS before mlx-lm imports MLX)
