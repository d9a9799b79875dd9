"""notetaker: a local, private meeting note-taker for the terminal."""

import asr  # noqa: F401  (first: sets up BLAS before numpy or MLX load; see asr/runtime/mlxrt.py)

__version__ = "0.1.0"
