"""Speech recognition engines on MLX. Imports nothing from `notetaker`."""

from asr.runtime.mlxrt import configure_threads, preload_blas

# Before anything in this package imports mlx.core (see runtime/mlxrt.py).
configure_threads()
preload_blas()
