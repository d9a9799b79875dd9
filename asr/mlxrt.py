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
        ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
    except OSError as e:
        _status = BlasStatus(True, False, path, f"OpenBLAS at {path} failed to load ({e}); " + INSTALL_HINT)
        return _status
    _status = BlasStatus(True, True, path, f"OpenBLAS {path}")
    return _status


def on_cpu() -> bool:
    """True when MLX computes on the CPU (Linux without CUDA): pick CPU kernels there."""
    import mlx.core as mx

    return mx.default_device() == mx.cpu
