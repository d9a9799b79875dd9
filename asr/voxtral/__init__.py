"""Voxtral Mini 4B Realtime: natively streaming ASR in MLX (model, weights, tokenizer, session)."""
