"""Checks of what a :class:`~.loop.Calibration` is given: sections, window and starting model.

A mixin, so that each refusal names the problem and the fix in one place.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .config import MIN_WINDOW, largest_window
from .progress import CalibrationWarning

__all__ = ["InputChecksMixin"]


class InputChecksMixin:
    """Input checks; mixed into :class:`~.loop.Calibration`."""

    def _check_init(self, model: Any) -> Any:
        """A starting model given by the caller (e.g. a trial's best), checked against the run."""
        if model.kind != "high" or int(model.m) != self.m or int(model.n_phases) != self.k:
            raise ValueError(
                f"init_model must be a high-parametric {self.k}-phase model with m = {self.m}, "
                f"got kind {model.kind!r}, m = {model.m}, {model.n_phases} phases"
            )
        if model.phase_map is not None and tuple(model.phase_map.labels) != tuple(
            self.phase_map.labels
        ):
            raise ValueError(
                f"init_model's phases {list(model.phase_map.labels)} differ from this run's "
                f"{list(self.phase_map.labels)}"
            )
        return model.copy(anisotropy=1.0, length_scale=1.0, kernel_scales={}, metadata={})

    def _check_sections(self, sections: np.ndarray) -> np.ndarray:
        arr = np.asarray(sections)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3:
            raise ValueError(
                f"sections must be a 2D image (H, W) or a stack (N, H, W), got shape {arr.shape}; "
                "for a 3D volume use core.phases.as_sections(volume, axis) first"
            )
        if arr.dtype.kind not in "iub":
            raise ValueError(
                f"sections must hold integer phase indices, got dtype {arr.dtype}; map labels with "
                "core.phases.to_indices"
            )
        if arr.size and (arr.min() < 0 or arr.max() >= self.k):
            raise ValueError(
                f"sections hold values {int(arr.min())}..{int(arr.max())}, but phase indices "
                "must be "
                f"0..{self.k - 1} for the {self.k} phases of the map; convert labels with "
                "core.phases.to_indices(image, phase_map)"
            )
        arr = arr.astype(np.uint8, copy=False)
        counts = np.bincount(arr.ravel(), minlength=self.k)
        absent = [self.phase_map.display_names[i] for i in range(self.k) if counts[i] == 0]
        if absent:
            raise ValueError(
                f"phase(s) {absent} do not occur in the data; an absent phase has no statistics to "
                "calibrate — check the phase mapping or calibrate with fewer phases"
            )
        return np.ascontiguousarray(arr)

    def _resolve_window(self, h: int, w: int) -> int:
        fit = largest_window(h, w, cap=4096)
        if fit == 0:
            raise ValueError(
                f"the images are {h}×{w} pixels; calibration needs at least "
                f"{MIN_WINDOW}×{MIN_WINDOW} "
                "(the discriminator window) — use larger images"
            )
        want = self.config.window or 128
        if want > fit:
            warnings.warn(
                f"window {want} does not fit the {h}×{w} images; using {fit}",
                CalibrationWarning,
                stacklevel=3,
            )
            return fit
        return want
