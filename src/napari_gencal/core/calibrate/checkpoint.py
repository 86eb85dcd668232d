"""Checkpoints of a calibration run: everything needed to continue it step for step.

A checkpoint is one ``torch.save`` file holding the model module, both optimizers, the
discriminator, the random-number-generator states, the step counters, the best parameters so far and
the configuration. Writes are atomic (temporary file + rename) so that a crash never leaves a
half-written checkpoint behind.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..io import atomic_write

__all__ = ["CHECKPOINT_FORMAT", "save_checkpoint", "load_checkpoint"]

CHECKPOINT_FORMAT = "napari-gencal-checkpoint"
CHECKPOINT_VERSION = 1


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` (tensors, dicts, numbers) atomically to ``path``, replacing an older one."""
    payload = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **state}
    return atomic_write(path, lambda tmp: torch.save(payload, tmp), overwrite=True)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (tensors land on the CPU).

    Raises
    ------
    ValueError
        When the file is not a napari-gencal checkpoint or has a newer format version.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such checkpoint")
    try:
        # Our checkpoints hold only tensors, numbers, strings and containers of them.
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets one clear message
        raise ValueError(f"{p} is not a readable calibration checkpoint ({exc})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{p} is not a napari-gencal calibration checkpoint")
    if int(state.get("version", 0)) > CHECKPOINT_VERSION:
        raise ValueError(
            f"{p} was written by a newer napari-gencal (checkpoint version {state['version']}); "
            "update the package to resume it"
        )
    return state
