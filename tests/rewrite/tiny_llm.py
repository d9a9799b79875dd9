"""Tiny instruct LLMs written in mlx-lm's on-disk layout, so `mlx_lm.load(folder)` (and
`mlx_lm.server --model folder`) load them exactly as a hub download.

A folder holds `config.json`, `model.safetensors` (+ index) written by mlx-lm's own
`save_model`/`save_config` (and `quantize_model` when asked), and a byte-level BPE
tokenizer trained with `tokenizers` on a small inline English corpus: `tokenizer.json`
plus `tokenizer_config.json` with a Jinja chat template and an end-of-turn token.
Weights are random; the models talk nonsense, deterministically.

`serve(folder)` runs a real `mlx_lm.server` subprocess on such a folder.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SPECIAL = ("<|pad|>", "<|begin|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>")
EOS = "<|end|>"
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

CORPUS = """\
Good morning everyone, thanks for joining the weekly planning meeting.
Let's start with the release schedule: we are aiming to ship version two by the end of the month.
Anya will own the migration plan, and Ben will review the database changes before Friday.
The main risk is the payment service; its latency doubled after the last deploy.
We decided to roll back the cache change and measure again next week.
Action item: Carla writes the summary and sends it to the customer team.
Question from Dev: do we still need the legacy export, or can we remove it?
The answer is that two customers use it, so we keep it for another quarter.
Budget is tight this quarter, so hiring for the second data engineer waits until July.
Summary: the release stays on track, the cache change is rolled back, the export stays.
Next meeting is on Tuesday at ten; please send agenda items before Monday evening.
Thank you all, see you next week.
"""


def train_tokenizer(vocab_size: int = 512):
    """A byte-level BPE tokenizer (`tokenizers.Tokenizer`) trained on CORPUS. Its alphabet
    is printable ASCII and whitespace (other characters are dropped), so every token
    decodes to valid UTF-8."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    # Printable ASCII, space, newline and tab as the byte-level pre-tokenizer spells them.
    alphabet = [chr(c) for c in range(33, 127)] + ["\u0120", "\u010a", "\u0109"]
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL), initial_alphabet=alphabet,
                                  limit_alphabet=len(alphabet), show_progress=False)
    tok.train_from_iterator([CORPUS] * 4, trainer)
    return tok


def _padded(tok, vocab_size: int):
    """The tokenizer with made-up word tokens appended until it has `vocab_size` ids, so
    every id the model can emit decodes to text (a small corpus gives fewer merges than
    asked; a real-size embedding has 128,256 rows)."""
    from tokenizers import Tokenizer

    spec = json.loads(tok.to_str())
    vocab: dict[str, int] = spec["model"]["vocab"]
    next_id = max(vocab.values()) + 1
    syllables = [a + b for a in "bcdfghklmnprstvz" for b in "aeiou"]
    words = ("\u0120" + "".join(p) for n in itertools.count(1) for p in itertools.product(syllables, repeat=n))
    for word in words:
        if next_id >= vocab_size:
            break
        if word not in vocab:
            vocab[word] = next_id
            next_id += 1
    return Tokenizer.from_str(json.dumps(spec))


def write_tokenizer(folder: Path, vocab_size: int = 512) -> int:
    """tokenizer.json + tokenizer_config.json in `folder`; returns the end-of-turn token id."""
    tok = train_tokenizer(min(vocab_size, 512))
    if tok.get_vocab_size() < vocab_size:
        tok = _padded(tok, vocab_size)
    tok.save(str(folder / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<|begin|>",
        "eos_token": EOS,
        "pad_token": "<|pad|>",
        "model_max_length": 131072,
        "chat_template": CHAT_TEMPLATE,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=1))
    return tok.token_to_id(EOS)


def llama_config(vocab_size: int = 512, hidden: int = 64, layers: int = 2, heads: int = 4, kv_heads: int = 2,
                 intermediate: int = 128, max_position: int = 2048, tie: bool = False) -> dict:
    return {
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "intermediate_size": intermediate,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "head_dim": hidden // heads,
        "rms_norm_eps": 1e-5,
        "vocab_size": vocab_size,
        "rope_theta": 500000.0,
        "max_position_embeddings": max_position,
        "tie_word_embeddings": tie,
    }


# Llama-3.2-1B's shapes and RoPE (what `bench/rewrite.py` runs at).
LLAMA_3_2_1B = llama_config(vocab_size=128256, hidden=2048, layers=16, heads=32, kv_heads=8, intermediate=8192,
                            max_position=131072, tie=True) | {
    "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"}}


def write_llm(folder: Path, config: dict | None = None, *, seed: int = 0, bits: int | None = None,
              dtype: str = "float32", weight_scale: float = 1.0) -> Path:
    """A random-weight instruct model in mlx-lm layout. `bits` quantizes it with mlx-lm's own
    `quantize_model` (group size 64), as mlx-community checkpoints are; `dtype` is the
    stored float type ("bfloat16" like those checkpoints). Returns `folder`."""
    import mlx.core as mx
    from mlx.utils import tree_map
    from mlx_lm.models.llama import Model, ModelArgs
    from mlx_lm.utils import quantize_model, save_config, save_model

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = dict(config or llama_config())
    config["eos_token_id"] = write_tokenizer(folder, config["vocab_size"])
    mx.random.seed(seed)
    model = Model(ModelArgs.from_dict(config))
    if weight_scale != 1.0:  # larger weights give livelier (less repetitive) greedy text
        model.update(tree_map(lambda p: p * weight_scale, model.parameters()))
    model.set_dtype(getattr(mx, dtype))
    mx.eval(model.parameters())
    if bits is not None:
        model, config = quantize_model(model, config, group_size=64, bits=bits)
    save_model(folder, model)
    save_config(config, folder / "config.json")
    return folder


# --- mlx_lm.server on such a folder ------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
# Exactly `python -m mlx_lm.server`, after the BLAS set-up the product does for itself
# (`import asr`): without it MLX's float32 matmuls on Linux use the reference BLAS, ~80x slower.
SERVER_WITH_BLAS = "import asr, runpy; runpy.run_module('mlx_lm.server', run_name='__main__', alter_sys=True)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LlmServer:
    url: str  # http://127.0.0.1:PORT (no /v1)
    folder: Path
    process: subprocess.Popen
    log: Path


@contextlib.contextmanager
def serve(folder: Path, log: Path, timeout: float = 120.0, with_blas: bool = False) -> Iterator[LlmServer]:
    """`python -m mlx_lm.server --model <folder>` on a free loopback port, ready (GET
    /v1/models answers; the model itself loads lazily), stopped on exit; its output goes to
    `log`. `with_blas`: with our OpenBLAS set-up, for timings."""
    # mlx_lm.server's /v1/models scans the hub cache and sends an empty body when the
    # cache folder does not exist yet (a real user's usually does).
    hub = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME") or os.path.expanduser("~/.cache/huggingface"), "hub")
    Path(hub).mkdir(parents=True, exist_ok=True)
    port = free_port()
    main = ["-c", SERVER_WITH_BLAS] if with_blas else ["-m", "mlx_lm.server"]
    cmd = [sys.executable, *main, "--model", str(folder), "--host", "127.0.0.1", "--port", str(port),
           "--log-level", "WARNING"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url, process, log, timeout)
        yield LlmServer(url, Path(folder), process, log)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(url: str, process: subprocess.Popen, log: Path, timeout: float) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mlx_lm.server exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with opener.open(url + "/v1/models", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"mlx_lm.server did not answer within {timeout:.0f} s:\n{log.read_text()[-3000:]}")
