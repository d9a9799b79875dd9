"""Speaker diarization models on MLX: pyannote segmentation-3.0 (who speaks when, within a
10 s window: diarize.segmentation.Segmenter) and CAM++ (a 192-d voice embedding:
diarize.embedding.Embedder); diarize.weights finds and loads their checkpoints. Imports
nothing from `notetaker`."""

from asr.runtime import mlxrt

# Before anything in this package imports mlx.core (see asr/runtime/mlxrt.py).
mlxrt.configure_threads()
mlxrt.preload_blas()
