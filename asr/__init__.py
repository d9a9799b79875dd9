"""Speech recognition engines on MLX. Imports nothing from `notetaker`."""

from asr.mlxrt import preload_blas

# Before anything in this package imports mlx.core (see mlxrt.py).
preload_blas()
