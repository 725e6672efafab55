"""Choose the torch device (``auto`` tries CUDA, then Apple MPS, then the CPU) and seed the
generators torch work draws from."""

from __future__ import annotations

import numpy as np
import torch

from decoding.errors import ModelError

__all__ = ["DEVICE_CHOICES", "pick_device", "autocast_dtype", "seed_all"]

DEVICE_CHOICES: tuple[str, ...] = ("auto", "cuda", "mps", "cpu")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def pick_device(name: str = "auto") -> torch.device:
    """The device for ``name`` (``auto``, ``cuda``, ``cuda:1``, ``mps`` or ``cpu``).

    ``auto`` picks the first available of CUDA, MPS and CPU. Asking for a device that is not there
    raises :class:`ModelError` naming the option and the fix.
    """
    choice = (name or "auto").strip().lower()
    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if choice.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ModelError(
                f"--device {name}: CUDA was asked for but torch sees no CUDA GPU "
                f"(torch {torch.__version__}); use --device cpu or --device auto"
            )
        return torch.device(choice)
    if choice == "mps":
        if not _mps_available():
            raise ModelError("--device mps: Apple MPS is not available here; use --device auto")
        return torch.device("mps")
    if choice == "cpu":
        return torch.device("cpu")
    raise ModelError(f"--device {name!r}: expected one of {', '.join(DEVICE_CHOICES)} (or cuda:N)")


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device``: bf16 on CUDA by default, else None."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision != "auto":
        raise ModelError(f"--precision {precision!r}: expected auto, fp32 or bf16")
    return torch.bfloat16 if device.type == "cuda" else None


def seed_all(seed: int) -> None:
    """Seed torch's generators (every device) and numpy's global one (Captum's GradientShap and
    the training's shuffles draw from it); any integer, numpy's taken modulo 2**32."""
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))
