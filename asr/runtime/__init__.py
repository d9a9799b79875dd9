"""Plumbing every model family shares: hub downloads, checkpoint files, memory footprints,
MLX's runtime set-up and the compute kernels. Imports no family (asr.whisper, asr.voxtral,
asr.qwen3, ...): families import it."""
