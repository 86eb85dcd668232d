"""Evaluation of a :class:`~.loop.Calibration`'s parameters on hard-threshold sections.

A mixin: the score that early stopping, the order trials and ``--continue`` compare, and the
candidate parameters it judges (thresholds matched to the data's volume fractions).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from . import _backend as be

__all__ = ["EvaluationMixin"]


class EvaluationMixin:
    """Evaluation and the kept best parameters; mixed into :class:`~.loop.Calibration`."""

    def keep_current_as_best(self) -> float:
        """Evaluate the current parameters and keep them as the best so far (e.g. a warm start
        from a trial fit: the run can then only end with something at least as good by the
        evaluation). Returns the score."""
        candidate = self._candidate()
        ev = self.evaluate(candidate)
        self.last_eval = ev
        self.best_score = ev["score"]
        self.best_state = {k: v.detach().clone() for k, v in candidate.state_dict().items()}
        self.epochs_since_best = 0
        return float(ev["score"])

    def _candidate(self) -> torch.nn.Module:
        """The parameters an evaluation judges and early stopping keeps.

        With ``match_fractions`` a copy (the scratch module) of the current parameters whose
        thresholds give the data's volume fractions exactly; the training module is not touched.
        Otherwise the training module itself.
        """
        if not self.config.match_fractions:
            return self.module
        self._scratch.load_state_dict(self.module.state_dict())
        if be.match_thresholds(self._scratch, self.data_fractions, seed=self.config.seed):
            return self._scratch
        return self.module

    @torch.no_grad()
    def evaluate(
        self, module: torch.nn.Module | None = None, seed: int | None = None
    ) -> dict[str, Any]:
        """Descriptors of hard-threshold sections of the current (or given) model vs the data.

        The sections use a fixed seed at every evaluation (common random numbers), so successive
        scores differ by the parameters, not by the noise.

        Returns
        -------
        dict
            ``volume_fraction``, ``specific_surface_area`` (per phase, 1/pixel), ``data_…`` of the
            same, ``score``: ``"paper"`` mean |ΔVF| + mean |ΔS_V|; ``"surface"`` the mean and the
            worst relative S_V error, averaged; plus ``score_euler`` times the same of the Euler
            densities' errors relative to the data's components + holes per area. ``seed``:
            other evaluation sections than the run's fixed ones (for the noise of a score).
        """
        module = module or self.module
        g = torch.Generator(device=self.device)
        g.manual_seed(self.config.seed + 7919 if seed is None else int(seed))
        idx = be.hard_sections(module, self.config.eval_sections, self.eval_size, g)
        vf = be.volume_fractions(idx, self.k)
        sv = be.surface_areas(idx, self.k)
        if self.config.score == "surface":
            # Relative S_V errors, the mean and the worst phase: what the verdict judges (each
            # phase within 5 %). Volume fractions are left out: with match_fractions they are the
            # data's in law, and their sampling noise would only blur the choice.
            rel = np.abs(sv - self.data_sv) / np.maximum(self.data_sv, 1e-12)
            score = float(0.5 * (rel.mean() + rel.max()))
        else:
            score = float(
                np.mean(np.abs(vf - self.data_fractions)) + np.mean(np.abs(sv - self.data_sv))
            )
        euler = be.euler_densities(idx, self.k)
        if self.config.score_euler > 0:
            rel_e = np.abs(euler - self.data_euler) / np.maximum(self.data_topology, 1e-12)
            score += float(self.config.score_euler * 0.5 * (rel_e.mean() + rel_e.max()))
        return {
            "volume_fraction": vf.tolist(),
            "specific_surface_area": sv.tolist(),
            "euler_density": euler.tolist(),
            "data_euler_density": self.data_euler.tolist(),
            "data_volume_fraction": self.data_fractions.tolist(),
            "data_specific_surface_area": self.data_sv.tolist(),
            "score": score,
        }
