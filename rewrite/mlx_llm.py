"""The `mlx` rewrite backend: a small instruct model run in-process with mlx-lm.

Models come from the hub (the mlx-community 4-bit conversions) or a local folder in the
same layout, through `asr.runtime.hub.resolve_model`, and load with `mlx_lm.load`; a local
`.gguf` file loads through rewrite/gguf.py into the same mlx-lm model classes, with the
tokenizer and chat template its metadata holds (rewrite/gguf_tokenizer.py). Replies stream
token by token with `mlx_lm.stream_generate` and stop at the model's end-of-turn tokens.

On the CPU (Linux) matmuls reach BLAS only in float32 and MLX's quantized CPU kernels are
slow, so float weights are cast to float32 and a quantized model is expanded to float32 at
load where that fits (Llama-3.2-1B: 4.9 GB). One that does not fit (3B: 12.8 GB) keeps its
4-bit weights for decoding and expands each weight for the prompt's many-row products,
which BLAS then does (PrefillDequantizedLinear). On a GPU the stored precision runs as is.
"""

from __future__ import annotations

import functools
import gc
import importlib.util
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rewrite.backend import BackendOptions, BackendSpec, RewriteBackend
from rewrite.base import Capabilities, Message, RewriteError

DEFAULT_MODEL = "mlx-community/Llama-3.2-3B-Instruct-4bit"  # 1.8 GB of weights: for 16 GB machines
SMALL_MODEL = "mlx-community/Llama-3.2-1B-Instruct-4bit"  # 0.7 GB: for tight memory budgets
LARGE_MODEL = "mlx-community/Meta-Llama-3.1-8B-Instruct-4bit"  # 4.5 GB: for 16 GB and up
NAMES = {
    "llama-3.1-8b": LARGE_MODEL,
    "llama-3.2-3b": DEFAULT_MODEL,
    "llama-3.2-1b": SMALL_MODEL,
}
# The KV cache grows with the context the backend admits (Llama-3.2-3B: 112 KiB a token in
# 16 bits), so a model's advertised window (128k for Llama 3.2) is capped.
MAX_CONTEXT = 32768
FALLBACK_CONTEXT = 4096  # configs that do not say


def resolve_llm(model: str | None, cache_dir: Path | None = None, allow_download: bool = True) -> tuple[str, Path]:
    """(the model's name as shown to users, its local folder)."""
    from asr.base import ModelNotFoundError
    from asr.runtime.hub import resolve_model

    name = model or DEFAULT_MODEL
    spec = NAMES.get(name.lower(), name)
    path = Path(spec).expanduser()
    if path.suffix.lower() == ".gguf" or path.is_file():
        return spec, gguf_file(path)
    try:
        return spec, resolve_model(spec, cache_dir, allow_download)
    except ModelNotFoundError as e:
        raise RewriteError(str(e)) from None


def gguf_file(path: Path) -> Path:
    """`path` if it is a GGUF file, else RewriteError in one line."""
    from rewrite.gguf import is_gguf

    if not path.exists():
        raise RewriteError(f"no GGUF file at {path}")
    if not path.is_file() or not is_gguf(path):
        raise RewriteError(f"{path} is not a GGUF file" if path.is_file() else f"{path} is not a file")
    return path


class MlxBackend(RewriteBackend):
    name = "mlx"

    def __init__(self, model: str | None = None, *, cache_dir: Path | None = None, allow_download: bool = True,
                 context_tokens: int | None = None, dequantize: bool | None = None):
        """`context_tokens`: the context admitted (prompt + reply), for a memory budget;
        default the model's window capped at MAX_CONTEXT. `dequantize`: None expands
        quantized weights to float32 on the CPU where they fit, True always, False keeps
        the stored precision."""
        self.model, self.folder = resolve_llm(model, cache_dir, allow_download)
        self.gguf = self.folder.is_file()  # a GGUF file rather than an mlx-lm folder
        if self.gguf:
            self._model, self._tokenizer, config = _load_gguf(self.folder, dequantize)
        else:
            if not (self.folder / "config.json").is_file():
                raise RewriteError(f"{self.folder} has no config.json: not a model folder")
            self._model, self._tokenizer, config = _load(self.folder, dequantize)
        if not self._tokenizer.has_chat_template:
            raise RewriteError(f"{self.model} has no chat template: it is not an instruct (chat) model")
        window = _config_context(config)
        self._context = min(window, context_tokens or MAX_CONTEXT)
        self._config = config
        self.last_finish_reason: str | None = None  # "stop" (end of turn) or "length"

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(backend=self.name, model=self.model, context_tokens=self._context)

    @property
    def weight_bytes(self) -> int:
        """Bytes the loaded weights take (as loaded: after any float32 expansion)."""
        from mlx.utils import tree_flatten

        return sum(v.nbytes for _, v in tree_flatten(self._model.parameters()))

    def kv_bytes_per_token(self) -> int | None:
        """KV-cache bytes one token of context takes, from the config (None if it does not say)."""
        c = self._config.get("text_config", self._config)
        layers, heads = c.get("num_hidden_layers"), c.get("num_attention_heads")
        kv_heads = c.get("num_key_value_heads") or heads
        head_dim = c.get("head_dim") or (c.get("hidden_size") or 0) // (heads or 1)
        if not (layers and kv_heads and head_dim):
            return None
        # Keys and values are kept in the activations' type: that of the float weights.
        item = next((v.dtype.size for _, v in _float_params(self._model)), 2)
        return 2 * layers * kv_heads * head_dim * item

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False))

    def prompt_ids(self, messages: Sequence[Message]) -> list[int]:
        """The prompt as the model sees it: the chat template with the assistant turn opened."""
        if not messages:
            raise ValueError("complete() needs at least one message")
        chat = [{"role": m.role, "content": m.content} for m in messages]
        try:
            ids = self._tokenizer.apply_chat_template(chat, add_generation_prompt=True)
        except Exception as e:  # jinja2 TemplateError, e.g. "System role not supported"
            raise RewriteError(f"{self.model}'s chat template rejected the messages: {_first_line(e)}") from None
        return list(ids)

    def complete(self, messages: Sequence[Message], max_tokens: int, temperature: float = 0.0) -> Iterator[str]:
        """Stream the reply. It ends at the end-of-turn token, after `max_tokens`, or where
        the context is full (prompt + reply ≤ context_tokens); `last_finish_reason` says which."""
        if max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        ids = self.prompt_ids(messages)
        room = self._context - len(ids)
        if room <= 0:
            raise RewriteError(f"the prompt takes {len(ids)} tokens but {self.model} is run with a context of "
                               f"{self._context}; shorten the input")
        return self._stream(ids, min(max_tokens, room), temperature)

    def _stream(self, ids: list[int], max_tokens: int, temperature: float) -> Iterator[str]:
        import mlx.core as mx
        from mlx_lm import stream_generate
        from mlx_lm.models.cache import make_prompt_cache
        from mlx_lm.sample_utils import make_sampler

        self.last_finish_reason = None
        if self.gguf:
            yield from self._stream_gguf(ids, max_tokens, temperature)
            return
        # A plain (unbounded) cache: complete() has already bounded prompt + reply by the
        # context, and a rotating cache would drop the transcript's start silently.
        cache = make_prompt_cache(self._model)
        sampler = make_sampler(temp=temperature)  # temperature 0: argmax (greedy)
        for r in stream_generate(self._model, self._tokenizer, mx.array(ids), max_tokens=max_tokens,
                                 sampler=sampler, prompt_cache=cache):
            if r.finish_reason is not None:
                self.last_finish_reason = r.finish_reason
            if r.text:
                yield r.text

    def _stream_gguf(self, ids: list[int], max_tokens: int, temperature: float) -> Iterator[str]:
        """mlx-lm's token loop (`generate_step`), stopped at the file's end-of-turn tokens;
        text pieces from the tokenizer's streaming decoder."""
        import mlx.core as mx
        from mlx_lm.generate import generate_step
        from mlx_lm.models.cache import make_prompt_cache
        from mlx_lm.sample_utils import make_sampler

        stops = self._tokenizer.eos_token_ids
        tokens = generate_step(mx.array(ids), self._model, max_tokens=max_tokens,
                               sampler=make_sampler(temp=temperature), prompt_cache=make_prompt_cache(self._model))

        def until_stop() -> Iterator[int]:
            for token, _ in tokens:
                if token in stops:
                    self.last_finish_reason = "stop"
                    return
                yield token

        for piece in self._tokenizer.stream_text(until_stop()):
            if piece:
                yield piece
        if self.last_finish_reason is None:
            self.last_finish_reason = "length"

    def close(self) -> None:
        import mlx.core as mx

        self._model = None
        self._tokenizer = None
        gc.collect()
        mx.clear_cache()


def _load(folder: Path, dequantize: bool | None) -> tuple[Any, Any, dict]:
    import mlx.core as mx

    try:
        import mlx_lm
    except ImportError:
        raise RewriteError("the mlx rewrite backend needs mlx-lm: `pip install mlx-lm`") from None
    try:
        model, tokenizer, config = mlx_lm.load(str(folder), lazy=True, return_config=True)
    except Exception as e:  # mlx-lm raises ValueError, FileNotFoundError, KeyError, OSError...
        raise RewriteError(f"{folder} is not a language model mlx-lm can load: {_first_line(e)}") from None
    from mlx.utils import tree_flatten

    from asr.runtime.mlxrt import release_freed_memory

    _fit_to_device(model, config, dequantize)
    try:
        # One tensor at a time: each packed layer is freed once its expansion exists, so the
        # load peaks near the expanded size rather than packed + expanded.
        for _, value in tree_flatten(model.parameters()):
            mx.eval(value)
    except Exception as e:  # truncated safetensors surface here with lazy loading
        raise RewriteError(f"cannot read the weights in {folder}: {_first_line(e)}") from None
    release_freed_memory()
    return model, tokenizer, config


def _load_gguf(path: Path, dequantize: bool | None) -> tuple[Any, Any, dict]:
    import mlx.core as mx
    from mlx.utils import tree_flatten

    from asr.runtime.mlxrt import release_freed_memory
    from rewrite.gguf import load_model
    from rewrite.gguf_tokenizer import GGUFTokenizer

    if importlib.util.find_spec("mlx_lm") is None:  # the model classes
        raise RewriteError("the mlx rewrite backend needs mlx-lm: `pip install mlx-lm`")
    model, config, metadata = load_model(path)
    tokenizer = GGUFTokenizer(metadata)
    _fit_to_device(model, config, dequantize)
    for _, value in tree_flatten(model.parameters()):
        mx.eval(value)
    release_freed_memory()
    return model, tokenizer, config


def _fit_to_device(model: Any, config: dict, dequantize: bool | None) -> None:
    """On the CPU: float32 compute, and quantized layers expanded where they fit."""
    import mlx.core as mx
    import mlx.nn as nn
    from mlx.utils import tree_flatten
    from mlx_lm.utils import dequantize_model

    from asr.runtime.checkpoint import expand_on_cpu
    from asr.runtime.mlxrt import on_cpu

    quantization = config.get("quantization")
    cpu = on_cpu()
    if cpu:
        # Floats only (packed weights stay as they are); before any expansion, so that it
        # computes in float32 from float32 scales rather than rounding to float16.
        model.set_dtype(mx.float32)
    if quantization and (dequantize or (dequantize is None and cpu)):
        weights = dict(tree_flatten(model.parameters()))
        if dequantize or expand_on_cpu(weights, quantization):
            dequantize_model(model)
    if cpu:
        prefill_linear = _prefill_linear_class()
        for _, module in model.named_modules():
            if type(module) is nn.QuantizedLinear:
                module.__class__ = prefill_linear  # same parameters, another __call__


PREFILL_ROWS = 8  # rows from which a float32 BLAS product beats MLX's quantized CPU kernel


@functools.cache
def _prefill_linear_class() -> type:
    import mlx.core as mx
    import mlx.nn as nn

    class PrefillDequantizedLinear(nn.QuantizedLinear):
        """A quantized layer for the CPU. One-row products (decoding) keep the quantized
        kernel; many-row products (the prompt) expand the weight to float32 for that
        product and use BLAS: measured 8x faster at 64 rows, 20x at 256 (2 cores)."""

        def __call__(self, x: mx.array) -> mx.array:
            if x.size // x.shape[-1] < PREFILL_ROWS:
                return super().__call__(x)
            w = mx.dequantize(self["weight"], self["scales"], self.get("biases"), group_size=self.group_size,
                              bits=self.bits, mode=self.mode)
            y = x @ w.astype(x.dtype).T
            return y + self["bias"] if "bias" in self else y

    return PrefillDequantizedLinear


def _float_params(model: Any) -> Iterator[tuple[str, Any]]:
    import mlx.core as mx
    from mlx.utils import tree_flatten

    return ((k, v) for k, v in tree_flatten(model.parameters()) if mx.issubdtype(v.dtype, mx.floating))


def _config_context(config: dict) -> int:
    c = config.get("text_config", config)
    for key in ("max_position_embeddings", "max_sequence_length", "n_positions", "seq_length"):
        value = c.get(key) or config.get(key)
        if isinstance(value, int) and value > 0:
            return value
    return FALLBACK_CONTEXT


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _build(options: BackendOptions) -> MlxBackend:
    return MlxBackend(options.model, cache_dir=options.cache_dir, allow_download=options.allow_download,
                      context_tokens=options.context_tokens)


SPEC = BackendSpec(name="mlx", summary="a small instruct model run in-process with mlx-lm", build=_build,
                   default_model=DEFAULT_MODEL, names=NAMES)
