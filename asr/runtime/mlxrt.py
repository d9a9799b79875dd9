"""MLX runtime set-up that must happen before `mlx.core` is first imported.

MLX's Linux CPU wheel bundles the reference (netlib) BLAS: a 4096² float32 matmul
takes ~88 s with it and ~1 s with OpenBLAS. Loading the system OpenBLAS with
RTLD_GLOBAL before MLX makes MLX's BLAS calls resolve to it (see PLATFORM-NOTES).
numpy's bundled OpenBLAS cannot stand in: its symbols are renamed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
    "/usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.so.0",
    "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
    "/usr/lib/aarch64-linux-gnu/libopenblas.so.0",
    "/usr/lib64/libopenblasp.so.0",
    "/usr/lib64/libopenblas.so.0",
    "/usr/lib/libopenblas.so.0",
)

INSTALL_HINT = (
    "install OpenBLAS for ~80x faster MLX on CPU: "
    "`sudo apt-get install libopenblas0-pthread` (Debian/Ubuntu), "
    "`sudo dnf install openblas` (Fedora), `sudo pacman -S openblas` (Arch)"
)


@dataclass(frozen=True)
class BlasStatus:
    needed: bool  # False on macOS: MLX uses Accelerate there
    loaded: bool
    path: str | None
    detail: str


_status: BlasStatus | None = None

# Two OpenBLAS instances share the cores: numpy's bundled one (our CPU kernels) and the
# system one under MLX. Measured on 2 cores, Whisper tiny:
# - their workers busy-wait 2^28 cycles (~0.1 s) after each call, so the encoder's
#   alternating calls fought over the cores (0.52 s per window; 0.30 s with 2^10);
# - numpy's threaded gemv in a decoder step spiked from 0.3 to 3+ ms on thread hand-offs;
#   single-threaded it is steady, and our kernels spread heads and blocks over threads
#   themselves (attention 26 ms vs 30 ms with threaded BLAS).
# Both libraries read these variables when they load, so numpy is imported with them set,
# MLX's OpenBLAS gets every core explicitly, and the environment is put back.
THREAD_TIMEOUT = "10"
_mlx_blas_threads: int | None = None


def configure_threads() -> None:
    """Before numpy or MLX load: numpy's BLAS single-threaded, short spin-waits for both."""
    global _mlx_blas_threads
    if "numpy" in sys.modules:
        return  # too late to change numpy's BLAS; keep whatever it has
    saved = {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OPENBLAS_THREAD_TIMEOUT")}
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", THREAD_TIMEOUT)
    if saved["OPENBLAS_NUM_THREADS"] is None:
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
        _mlx_blas_threads = os.cpu_count() or 1
    try:
        import numpy  # noqa: F401  (its OpenBLAS reads the variables now)

        preload_blas()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _find_openblas() -> str | None:
    override = os.environ.get("NOTETAKER_OPENBLAS")
    if override:
        return override if Path(override).exists() else None
    for path in _CANDIDATES:
        if Path(path).exists():
            return path
    name = ctypes.util.find_library("openblas")
    return name


def preload_blas() -> BlasStatus:
    """Load the system OpenBLAS globally before MLX, once. Safe to call repeatedly."""
    global _status
    if _status is not None:
        return _status
    if sys.platform != "linux":
        _status = BlasStatus(False, False, None, "MLX uses the platform BLAS")
        return _status
    if os.environ.get("NOTETAKER_OPENBLAS", "").lower() in ("0", "off", "none"):
        _status = BlasStatus(True, False, None, "disabled by NOTETAKER_OPENBLAS")
        return _status
    if "mlx.core" in sys.modules:
        _status = BlasStatus(True, False, None, "mlx was imported before OpenBLAS could be loaded")
        return _status
    path = _find_openblas()
    if path is None:
        _status = BlasStatus(True, False, None, "OpenBLAS not found; " + INSTALL_HINT)
        return _status
    try:
        lib = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
        if _mlx_blas_threads and hasattr(lib, "openblas_set_num_threads"):
            lib.openblas_set_num_threads(_mlx_blas_threads)
    except OSError as e:
        _status = BlasStatus(True, False, path, f"OpenBLAS at {path} failed to load ({e}); " + INSTALL_HINT)
        return _status
    _status = BlasStatus(True, True, path, f"OpenBLAS {path}")
    return _status


def on_cpu() -> bool:
    """True when MLX computes on the CPU (Linux without CUDA): pick CPU kernels there."""
    import mlx.core as mx

    return mx.default_device() == mx.cpu


def release_freed_memory() -> None:
    """Hand memory freed by a load back to the system. glibc keeps freed heap memory (the
    packed weights an expansion replaced: about 470 MB for Qwen3-ASR 0.6B 8-bit) in the
    process, where the memory budget cannot account for it; malloc_trim returns it.
    Nothing to do elsewhere."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (musl): its allocator returns memory itself
        pass
