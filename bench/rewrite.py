"""Rewrite backends: time to first token and decoding speed of `mlx` (in-process) vs
`openai` (through a real mlx_lm.server), one run.

    python bench/rewrite.py [--prompt-tokens 256] [--tokens 32] [--repeats 1] [--stored-server]
    python bench/rewrite.py --gguf FILE.gguf [--tokens 64] [--repeats 3]

--gguf: a real GGUF through our loader (MlxBackend on the file) against `mlx_lm.stream_generate`
on the same weights saved in MLX format (mlx-lm's `save_model`/`save_config`, the weights as
our backend holds them: float32 on a CPU, packed on a GPU) and loaded with `mlx_lm.load`.
Same prompt ids, greedy; prints TTFT and decoding speed side by side and their ratio.

A model of Llama-3.2-1B's shapes (hidden 2048, 16 layers, 32/8 heads, vocabulary 128,256,
tied embeddings, llama3 RoPE) with random weights, written as an mlx-community-style 4-bit
checkpoint (bfloat16, mlx-lm's own `quantize_model`, group 64), with a tokenizer that
covers the whole vocabulary. Every side answers the same chat prompt (a meeting transcript
of about --prompt-tokens tokens) with --tokens greedy tokens. Each request starts with its
own first line, so mlx_lm.server's prompt cache cannot skip the prefill.

  mlx-f32      MlxBackend as it runs on a CPU by default at this size: the 4-bit weights
               expanded to float32 at load (BLAS)
  mlx-4bit     MlxBackend(dequantize=False): 4-bit weights kept (float32 scales); one-row
               products on MLX's quantized kernel, the prompt's through BLAS
  openai-f32   OpenAIBackend -> mlx_lm.server (its own process, OpenBLAS loaded as ours; a
               plain `python -m mlx_lm.server` on Linux gets MLX's reference BLAS) on the
               same model saved in float32: mlx-f32's arithmetic plus HTTP, server-sent
               events and the server's batch scheduler
  openai-4bit  (--stored-server) OpenAIBackend -> mlx_lm.server on the 4-bit bfloat16
               checkpoint as stored: what pointing mlx_lm.server at an mlx-community model
               gives on a CPU. So slow there that it gets a one-line prompt (~10 tokens),
               4 tokens, no warm-up request and one repeat.

TTFT: from the call to the first text piece (prompt prefill and one token). Decoding:
(pieces - 1) / (last piece - first piece); every token of this vocabulary is one piece.
Ready: from the constructor (or the server's launch) to the end of a first 2-token reply;
mlx_lm.server loads its model lazily, after it already answers HTTP.
Weights are random: the text is noise, the timings are real.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import asr  # noqa: F401  (BLAS set-up before numpy loads, as the product does)
from rewrite.backend import RewriteBackend
from rewrite.base import Message
from tests.rewrite.tiny_llm import CORPUS, LLAMA_3_2_1B, serve, write_llm

SYSTEM = "You write concise meeting summaries: decisions, action items with owners, open questions."


def _messages(nonce: int, transcript: str) -> list[Message]:
    return [Message("system", f"Request {nonce}. {SYSTEM}"), Message("user", f"Transcript:\n{transcript}")]


def _transcript(folder: Path, tokens: int) -> str:
    """Corpus lines, cycled with speaker names, until the whole prompt has about `tokens`."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    lines = [ln for ln in CORPUS.splitlines() if ln]
    speakers = ["Anya", "Ben", "Carla", "Dev"]
    out: list[str] = []
    base = len(tok.encode(f"Request 0. {SYSTEM} Transcript:").ids) + 8  # template tokens
    while base + len(tok.encode("\n".join(out)).ids) < tokens:
        i = len(out)
        out.append(f"[{i * 7 // 60:02d}:{i * 7 % 60:02d}] {speakers[i % 4]}: {lines[i % len(lines)]}")
    return "\n".join(out)


def _build(tmp: Path) -> tuple[Path, Path]:
    """The 4-bit bfloat16 checkpoint, and the same weights dequantized to float32."""
    import mlx.core as mx
    import mlx_lm
    from mlx_lm.utils import dequantize_model, save_config, save_model

    q4 = write_llm(tmp / "q4", LLAMA_3_2_1B, bits=4, dtype="bfloat16")
    model, _, config = mlx_lm.load(str(q4), lazy=True, return_config=True)
    dequantize_model(model)
    model.set_dtype(mx.float32)
    f32 = tmp / "f32"
    save_model(f32, model)
    for key in ("quantization", "quantization_config"):
        config.pop(key, None)
    save_config(config, f32 / "config.json")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(q4 / name, f32 / name)
    del model
    gc.collect()
    mx.clear_cache()
    return q4, f32


def _measure(backend: RewriteBackend, make: Callable[[int], list[Message]], tokens: int, repeats: int,
             nonce: int, warm: bool = True) -> dict:
    warmup_s = None
    if warm:  # the first reply: allocations, and the server's model load (it loads lazily)
        t0 = time.perf_counter()
        list(backend.complete(_messages(nonce, "Warm-up."), 2))
        warmup_s = time.perf_counter() - t0
    runs = []
    for i in range(repeats):
        t0 = time.perf_counter()
        first = last = None
        pieces = 0
        for _ in backend.complete(make(nonce + 1 + i), tokens):
            last = time.perf_counter()
            first = first or last
            pieces += 1
        assert first is not None and last is not None, "no reply"
        runs.append({"ttft_s": first - t0, "decode_tps": (pieces - 1) / max(last - first, 1e-9), "pieces": pieces,
                     "total_s": last - t0, "finish": getattr(backend, "last_finish_reason", None)})
    return min(runs, key=lambda r: r["total_s"]) | {"warmup_s": warmup_s}


def _prompt_tokens(folder: Path, messages: list[Message]) -> int:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    text = "".join(f"<|{m.role}|>\n{m.content}<|end|>\n" for m in messages)
    return len(tok.encode(f"<|begin|>{text}<|assistant|>\n").ids)


def _save_mlx_folder(backend, folder: Path) -> None:
    """Our loaded model as an mlx-lm folder: weights, config, tokenizer.json and template."""
    from mlx_lm.utils import save_config, save_model

    config = dict(backend._config)
    if not any(type(m).__name__.startswith(("Quantized", "Prefill")) for _, m in backend._model.named_modules()):
        config.pop("quantization", None)  # expanded at load (the CPU)
    save_model(folder, backend._model)
    save_config(config, folder / "config.json")
    tok = backend._tokenizer
    tok.backend.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "chat_template": tok.chat_template,
        "eos_token": tok.token(tok.eos_token_id), "bos_token": tok.token(tok.bos_token_id)}))


def _timed(stream) -> dict:
    t0 = time.perf_counter()
    first = last = None
    pieces = 0
    for _ in stream:
        last = time.perf_counter()
        first = first or last
        pieces += 1
    assert first is not None and last is not None, "no reply"
    return {"ttft_s": first - t0, "decode_tps": (pieces - 1) / max(last - first, 1e-9), "pieces": pieces}


def gguf_main(path: Path, tokens: int, repeats: int) -> None:
    import mlx.core as mx
    import mlx_lm
    from mlx_lm.sample_utils import make_sampler

    from rewrite.mlx_llm import MlxBackend

    t0 = time.perf_counter()
    ours = MlxBackend(str(path))
    load_s = time.perf_counter() - t0
    messages = [Message("system", SYSTEM), Message("user", "Transcript:\n" + CORPUS)]
    ids = ours.prompt_ids(messages)
    stops = ours._tokenizer.eos_token_ids
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "mlx"
        _save_mlx_folder(ours, folder)
        t0 = time.perf_counter()
        model, tokenizer = mlx_lm.load(str(folder))
        mlx_load_s = time.perf_counter() - t0
    greedy = make_sampler(temp=0.0)

    def theirs():  # the same stops as ours, so both replies have the same length
        for r in mlx_lm.stream_generate(model, tokenizer, mx.array(ids), max_tokens=tokens, sampler=greedy):
            if r.token in stops:
                return
            yield r.text

    sides = {"gguf (ours)": lambda: ours._stream(ids, tokens, 0.0), "mlx_lm.generate": theirs}
    rows: dict[str, dict] = {}
    list(sides["gguf (ours)"]())  # warm-up for both
    list(theirs())
    for _ in range(repeats):  # alternated, best of each kept: other load on the machine hits both alike
        for name, run in sides.items():
            r = _timed(run())
            if name not in rows or r["ttft_s"] + r["pieces"] / r["decode_tps"] < \
                    rows[name]["ttft_s"] + rows[name]["pieces"] / rows[name]["decode_tps"]:
                rows[name] = r
    rows["gguf (ours)"]["load_s"], rows["mlx_lm.generate"]["load_s"] = load_s, mlx_load_s
    print(f"{path.name}: prompt {len(ids)} tokens, reply up to {tokens}, best of {repeats}, weights "
          f"{ours.weight_bytes / 1e6:.0f} MB as loaded")
    print(f"{'side':<16} {'load s':>7} {'TTFT s':>7} {'decode tok/s':>12} {'pieces':>6}")
    for name, r in rows.items():
        print(f"{name:<16} {r['load_s']:>7.2f} {r['ttft_s']:>7.3f} {r['decode_tps']:>12.1f} {r['pieces']:>6}")
    a, b = rows["gguf (ours)"], rows["mlx_lm.generate"]
    print(f"\nours/mlx_lm: decoding speed {a['decode_tps'] / b['decode_tps']:.3f}x (goal >= 0.95), "
          f"TTFT {a['ttft_s'] / b['ttft_s']:.3f}x (lower is faster)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--prompt-tokens", type=int, default=256)
    p.add_argument("--tokens", type=int, default=32, help="tokens each reply is asked for")
    p.add_argument("--repeats", type=int, default=1, help="timed requests per side (best kept)")
    p.add_argument("--stored-server", action="store_true",
                   help="also time mlx_lm.server on the stored 4-bit bfloat16 checkpoint (slow on a CPU)")
    p.add_argument("--gguf", type=Path, help="time a GGUF file through our loader against mlx_lm on its weights")
    args = p.parse_args()
    if args.gguf is not None:
        gguf_main(args.gguf, args.tokens, args.repeats)
        return

    from rewrite.mlx_llm import MlxBackend
    from rewrite.openai_compat import OpenAIBackend

    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        t0 = time.perf_counter()
        q4, f32 = _build(tmp)
        transcript = _transcript(q4, args.prompt_tokens)
        prompt = _prompt_tokens(q4, _messages(0, transcript))
        print(f"built the random 1B checkpoint (4-bit and float32 copies) in {time.perf_counter() - t0:.0f} s; "
              f"prompt {prompt} tokens, reply {args.tokens} tokens", flush=True)

        def meeting(nonce: int) -> list[Message]:
            return _messages(nonce, transcript)

        for name, kwargs in (("mlx-f32", {}), ("mlx-4bit", {"dequantize": False})):
            t0 = time.perf_counter()
            backend = MlxBackend(str(q4), **kwargs)
            load_s = time.perf_counter() - t0
            rows[name] = _measure(backend, meeting, args.tokens, args.repeats, nonce=100) | {
                "load_s": load_s, "prompt": _prompt_tokens(q4, meeting(101)), "weights_gb": backend.weight_bytes / 1e9}
            print(f"{name}: {rows[name]}", flush=True)
            backend.close()
            del backend
            gc.collect()

        def hello(nonce: int) -> list[Message]:
            return [Message("user", f"Hi {nonce}.")]

        sides: list[tuple[str, Path, Callable[[int], list[Message]], int]] = [
            ("openai-f32", f32, meeting, args.tokens)]
        if args.stored_server:
            sides.append(("openai-4bit", q4, hello, 4))
        for name, folder, make, tokens in sides:
            t0 = time.perf_counter()
            with serve(folder, tmp / f"{name}.log", timeout=600, with_blas=True) as server:
                load_s = time.perf_counter() - t0
                backend = OpenAIBackend(server.url, timeout=3600)
                short = name == "openai-4bit"  # no warm-up request: each costs minutes there
                rows[name] = _measure(backend, make, tokens, 1 if short else args.repeats, nonce=200,
                                      warm=not short) | {
                    "load_s": load_s, "prompt": _prompt_tokens(q4, make(201)), "weights_gb": None}
            print(f"{name}: {rows[name]}", flush=True)

    print(f"\n{'side':<12} {'prompt':>6} {'reply':>5} {'TTFT s':>8} {'decode tok/s':>12} {'ready s':>8} "
          f"{'weights GB':>10}")
    for name, r in rows.items():
        gb = f"{r['weights_gb']:.2f}" if r["weights_gb"] else "(server)"
        ready = f"{r['load_s'] + r['warmup_s']:.1f}" if r["warmup_s"] is not None else "in TTFT"
        print(f"{name:<12} {r['prompt']:>6} {r['pieces']:>5} {r['ttft_s']:>8.2f} {r['decode_tps']:>12.2f} "
              f"{ready:>8} {gb:>10}")
    a, b = rows["openai-f32"], rows["mlx-f32"]
    print(f"\nopenai/mlx (same float32 weights): TTFT {a['ttft_s'] / b['ttft_s']:.2f}x, "
          f"decoding speed {a['decode_tps'] / b['decode_tps']:.2f}x; peak RSS of this process "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.1f} GB")
    print(json.dumps({k: {m: (round(v, 3) if isinstance(v, float) else v) for m, v in r.items()}
                      for k, r in rows.items()}))


if __name__ == "__main__":
    main()
