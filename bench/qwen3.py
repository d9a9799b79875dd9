"""Qwen3-ASR 0.6B: real-time factor of our MLX engine vs the transformers reference, one run.

    python bench/qwen3.py [--clips 6] [--threads 2]

The real 0.6B shapes (audio encoder 896 x 18 layers, Qwen3 decoder 1024 x 28 layers, 151,936
tokens) with random weights, written as an mlx-community 8-bit checkpoint (decoder quantized,
audio tower float) with a tokenizer of the real special-token ids. Both sides transcribe the
same speech clips (espeak sentences, 2-5 s each) utterance by utterance: log-mel, encoder,
prompt prefill, then exactly N greedy tokens (N = 4 + 3.5 per second of audio, what real
speech needs: EOS is ignored, since random weights would stop anywhere).

  ours-f32   the default on CPU: the 8-bit checkpoint expanded to float32 at load
  ours-8bit  the stored 8-bit decoder (MLX's quantized CPU kernels)
  reference  transformers Qwen3ASRForConditionalGeneration, float32, the same weights
             (the dequantized 8-bit values), `generate` with greedy decoding

RTF = compute seconds / audio seconds; ratios are ours / reference on the same clips.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import asr  # noqa: E402,F401  (BLAS set-up before numpy loads, as the product does)

AUDIO = dict(num_mel_bins=128, d_model=896, encoder_layers=18, encoder_attention_heads=14, encoder_ffn_dim=3584,
             downsample_hidden_size=480, output_dim=1024, n_window=50, n_window_infer=800,
             max_source_positions=1500)  # fmt: skip
TEXT = dict(vocab_size=151936, hidden_size=1024, intermediate_size=3072, num_hidden_layers=28,
            num_attention_heads=16, num_key_value_heads=8, head_dim=128, rope_theta=1_000_000.0,
            rms_norm_eps=1e-6, tie_word_embeddings=True, max_position_embeddings=65536)  # fmt: skip
SPECIAL = {"<|endoftext|>": 151643, "<|im_start|>": 151644, "<|im_end|>": 151645, "<|audio_start|>": 151669,
           "<|audio_end|>": 151670, "<|audio_pad|>": 151676, "<asr_text>": 151704}  # fmt: skip


def _config() -> dict:
    ids = {"audio_token_id": 151676, "audio_start_token_id": 151669, "audio_end_token_id": 151670}
    return {"model_type": "qwen3_asr", "quantization": {"group_size": 64, "bits": 8},
            "thinker_config": {"audio_config": AUDIO, "text_config": TEXT, **ids}}


def _build(folder: Path):
    """Random full-size weights → an 8-bit mlx-layout folder; returns the float32 reference
    model holding exactly the dequantized values."""
    import mlx.core as mx
    import numpy as np
    import torch
    from transformers import Qwen3ASRConfig, Qwen3ASRForConditionalGeneration

    from tests.asr.qwen3.conftest import hf_to_original, original_to_mlx, quantize_mlx
    from tests.asr.qwen3.tokenizer_fixture import write_qwen_tokenizer

    torch.manual_seed(0)
    hf_cfg = Qwen3ASRConfig(audio_config=dict(AUDIO), text_config={**TEXT, "rope_parameters": {
        "rope_type": "default", "rope_theta": TEXT["rope_theta"]}}, audio_token_id=151676, tie_word_embeddings=True)
    ref = Qwen3ASRForConditionalGeneration(hf_cfg).eval()
    state = {k: v.detach().numpy() for k, v in ref.state_dict().items()}
    tensors = quantize_mlx(original_to_mlx(hf_to_original(state)), bits=8)
    mx.save_safetensors(str(folder / "model.safetensors"), tensors)
    (folder / "config.json").write_text(json.dumps(_config()))
    write_qwen_tokenizer(folder, TEXT["vocab_size"], SPECIAL)
    # The reference gets the values the 8-bit checkpoint really holds.
    with torch.no_grad():
        for key in [k for k in tensors if k.endswith(".scales")]:
            base = key[: -len(".scales")]
            w = mx.dequantize(tensors[base + ".weight"], tensors[key], tensors[base + ".biases"], group_size=64, bits=8)
            name = "model.language_model." + base[len("model."):] + ".weight"
            ref.state_dict()[name].copy_(torch.from_numpy(np.array(w.astype(mx.float32))))
    return ref


def _clips(n: int):
    from tests.asr.audio_util import espeak_clips

    return [a for _, a, _ in espeak_clips()[:n]]


def _tokens(seconds: float) -> int:
    return 4 + math.ceil(3.5 * seconds)


def _ours(engine, clips) -> dict:
    import mlx.core as mx

    d = engine.decoder
    enc = dec = 0.0
    steps = 0
    for audio in clips:
        t0 = time.perf_counter()
        emb = d.encode(audio)
        t1 = time.perf_counter()
        ids = d.prompt(emb.shape[0], context="Anya, Kubernetes, Q3 OKRs")
        cache = engine.net.make_cache()
        logits = engine.net.logits(engine.net.merged_embeddings(ids, emb), cache)
        for _ in range(_tokens(audio.size / 16000)):
            token = int(mx.argmax(logits).item())
            logits = engine.net.logits(engine.net.embed([token]), cache)
            steps += 1
        mx.eval(logits)
        enc += t1 - t0
        dec += time.perf_counter() - t1
    return {"encode_s": enc, "decode_s": dec, "tokens": steps}


def _reference(ref, tok, clips) -> dict:
    import numpy as np
    import torch

    from asr.qwen3.decoding import features

    enc = dec = 0.0
    steps = 0
    for audio in clips:
        t0 = time.perf_counter()
        mel = features(audio, 128)  # the same front end (parity-tested against theirs)
        frames = mel.shape[0]
        padded = -(-frames // 100) * 100
        feats = np.zeros((1, 128, padded), np.float32)
        feats[0, :, :frames] = mel.T
        mask = np.zeros((1, padded), np.int64)
        mask[0, :frames] = 1
        with torch.no_grad():
            audio_embeds = ref.model.get_audio_features(torch.tensor(feats), torch.tensor(mask)).pooler_output
        t1 = time.perf_counter()
        n_audio = audio_embeds.shape[0]
        prompt = ("<|im_start|>system\nAnya, Kubernetes, Q3 OKRs<|im_end|>\n<|im_start|>user\n<|audio_start|>"
                  + "<|audio_pad|>" * n_audio + "<|audio_end|><|im_end|>\n<|im_start|>assistant\n")
        ids = torch.tensor([tok.encode(prompt)])
        n = _tokens(audio.size / 16000)
        with torch.no_grad():
            out = ref.generate(input_ids=ids, input_features=torch.tensor(feats), input_features_mask=torch.tensor(mask),
                               attention_mask=torch.ones_like(ids), max_new_tokens=n, min_new_tokens=n,
                               do_sample=False, eos_token_id=None)
        steps += out.shape[1] - ids.shape[1]
        enc += t1 - t0
        dec += time.perf_counter() - t1
    return {"encode_s": enc, "decode_s": dec, "tokens": steps}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=6)
    p.add_argument("--threads", type=int, default=2, help="torch threads for the reference")
    p.add_argument("--repeats", type=int, default=2, help="timed runs per side (best kept)")
    args = p.parse_args()

    import torch

    from asr.qwen3.engine import Qwen3Engine
    from asr.qwen3.tokenizer import QwenTokenizer

    torch.set_num_threads(args.threads)
    clips = _clips(args.clips)
    audio_s = sum(a.size for a in clips) / 16000
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        ref = _build(folder)
        print(f"built random 0.6B checkpoint in {time.perf_counter() - t0:.0f} s; "
              f"{len(clips)} clips, {audio_s:.1f} s of speech", flush=True)
        tok = QwenTokenizer.from_folder(folder)
        rows = {}
        for name, kwargs in (("ours-f32", {}), ("ours-8bit", {"quantize_bits": 8})):
            t0 = time.perf_counter()
            engine = Qwen3Engine(str(folder), **kwargs)
            load_s = time.perf_counter() - t0
            _ours(engine, clips[:1])  # warm-up
            # MLX's quantized CPU kernels take seconds a token: one timed run is enough there.
            runs = [_ours(engine, clips) for _ in range(args.repeats if name == "ours-f32" else 1)]
            rows[name] = min(runs, key=lambda r: r["encode_s"] + r["decode_s"]) | {"load_s": load_s}
            del engine
        _reference(ref, tok, clips[:1])
        runs = [_reference(ref, tok, clips) for _ in range(args.repeats)]
        rows["reference"] = min(runs, key=lambda r: r["encode_s"] + r["decode_s"])
    base = rows["reference"]
    base_total = base["encode_s"] + base["decode_s"]
    print(f"\n{'side':<10} {'RTF':>7} {'encode s':>9} {'ms/token':>9} {'vs reference':>13}")
    for name, r in rows.items():
        total = r["encode_s"] + r["decode_s"]
        per_token = 1000 * r["decode_s"] / max(1, r["tokens"])
        print(f"{name:<10} {total / audio_s:>7.3f} {r['encode_s']:>9.2f} {per_token:>9.1f} "
              f"{total / base_total:>12.2f}x")
    enc_ratio = rows["ours-f32"]["encode_s"] / base["encode_s"]
    dec_ratio = rows["ours-f32"]["decode_s"] / base["decode_s"]
    print(f"\nours-f32 / reference: encoder {enc_ratio:.2f}x, decoder {dec_ratio:.2f}x "
          f"({rows['ours-f32']['tokens']} tokens each side); peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.1f} GB (whole process)")
    print(json.dumps({k: {m: round(v, 3) for m, v in r.items()} for k, r in rows.items()}))


if __name__ == "__main__":
    main()
