"""The CPU kernels compute exactly what the MLX path computes."""

import mlx.core as mx
import numpy as np
import pytest

from asr.runtime import kernels


@pytest.fixture(autouse=True)
def _restore():
    yield
    kernels.set_cpu_kernels(None)


def _both(fn, *args, **kw):
    kernels.set_cpu_kernels(True)
    a = np.array(fn(*args, **kw))
    kernels.set_cpu_kernels(False)
    b = np.array(fn(*args, **kw))
    return a, b


@pytest.mark.parametrize("batch, time, heads, dim", [(1, 1500, 6, 64), (2, 300, 4, 32), (1, 700, 2, 16)])
def test_attention_paths_agree(batch, time, heads, dim):
    mx.random.seed(0)
    q, k, v = (mx.random.normal((batch, time, heads * dim)) for _ in range(3))
    a, b = _both(kernels.attention, q, k, v, heads, dim ** -0.5)
    assert a.shape == (batch, time, heads * dim)
    np.testing.assert_allclose(a, b, atol=2e-5)


def test_attention_with_additive_mask():
    mx.random.seed(1)
    q, k, v = (mx.random.normal((1, 400, 2 * 16)) for _ in range(3))
    mask = mx.triu(mx.full((400, 400), -mx.inf), k=1)
    a, b = _both(kernels.attention, q, k, v, 2, 0.25, mask)
    np.testing.assert_allclose(a, b, atol=2e-5)
    # causal: the first query sees only the first key
    np.testing.assert_allclose(a[0, 0], np.array(v)[0, 0], atol=1e-5)


def test_linear_paths_agree_for_few_rows():
    mx.random.seed(2)
    layer = kernels.Linear(384, 1536)
    mx.eval(layer.parameters())
    x = mx.random.normal((1, 3, 384))
    a, b = _both(layer, x)
    np.testing.assert_allclose(a, b, atol=1e-4)
    emb = kernels.Embedding(1000, 384)
    a, b = _both(emb.as_linear, x)
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_gelu_is_exact_erf_gelu():
    import math

    x = np.linspace(-8, 8, 300_001, dtype=np.float32).reshape(1, -1)  # not a multiple of the block
    a, b = _both(kernels.gelu, mx.array(x))
    ref = np.array([v * 0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x[0, ::997]])
    np.testing.assert_allclose(a[0, ::997], ref, atol=2e-6)
    np.testing.assert_allclose(a, b, atol=2e-6)
