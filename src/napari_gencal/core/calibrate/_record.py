"""Model metadata and checkpoints of a :class:`~.loop.Calibration` run.

A mixin: the engine's state (module, optimizers, generators, history) written with the model it
yields and to checkpoints that resume a run step for step.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from . import _backend as be
from .checkpoint import save_checkpoint
from .progress import _package_versions

__all__ = ["RunRecordMixin"]


class RunRecordMixin:
    """Metadata and checkpoints; mixed into :class:`~.loop.Calibration`."""

    def _with_metadata(self, model: Any, module: torch.nn.Module) -> Any:
        c = self.config
        hist = self.stage_history
        summary: dict[str, Any] = {"steps": len(hist)}
        for key in ("tppf", "adv", "disc", "total"):
            vals = [h[key] for h in hist if math.isfinite(h.get(key, float("nan")))]
            if vals:
                summary[key] = {"first": vals[0], "last": vals[-1], "min": min(vals)}
        # A thinned loss curve (≤ 200 points) is enough to judge convergence later.
        stride = max(1, len(hist) // 200)
        summary["curve"] = [
            {
                k: (round(v, 6) if isinstance(v, float) and math.isfinite(v) else None)
                for k, v in h.items()
            }
            for h in hist[::stride]
        ]
        desc = self.last_eval if module is self.module and self.best_state is None else None
        try:
            desc = desc or self.evaluate(module)
        except Exception:  # noqa: BLE001 - metadata must never lose the model itself
            desc = None
        meta = {
            "calibration": {
                "algorithm": c.algorithm,
                "stage": self.stage,
                "settings": c.to_dict(),
                "window": self.window,
                "section_size": self.section_size,
                "r_max": self.r_max,
                "m": self.m,
                "gamma": self.gamma,
                "seed": c.seed,
                "steps": self.step,
                "best_score": self.best_score,
                "stop_reason": self._stop_reason,
                "device": str(self.device),
            },
            "data": {
                "sha256": self.data_sha256,
                "n_sections": int(self.sections.shape[0]),
                "section_shape": list(self.sections.shape[1:]),
            },
            "descriptors": desc,
            "loss_history": summary,
            "versions": _package_versions(),
        }
        return be.finish_model(model, self.phase_map, self.voxel_size, self.anisotropy, meta)

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, path: str) -> None:
        """Write everything needed to continue this run step for step."""
        state = {
            "config": self.config.to_dict(),
            "data_sha256": self.data_sha256,
            "stage": self.stage,
            "step": self.step,
            "window": self.window,
            "r_max": self.r_max,
            "m": self.m,
            "model_json": be.model_to_json(be.model_from_module(self.module)),
            "module": self.module.state_dict(),
            "opt_theta": self.opt_theta.state_dict(),
            "disc": None if self.disc is None else self.disc.state_dict(),
            "opt_disc": None if self.opt_disc is None else self.opt_disc.state_dict(),
            "g_model": self.g_model.get_state(),
            "g_real": self.g_real.get_state(),
            "gamma": self.gamma,
            "best_state": self.best_state,
            "best_score": self.best_score,
            "epochs_since_best": self.epochs_since_best,
            "last_eval": self.last_eval,
            "history": self.stage_history,
            "high_model_json": (
                be.model_to_json(self.models["high"]) if "high" in self.models else None
            ),
            "elapsed": self._elapsed_now(),
        }
        save_checkpoint(path, state)

    def _elapsed_now(self) -> float:
        return self._elapsed_before + float(sum(self._step_times))

    def _restore(self, ck: dict[str, Any]) -> None:
        for key in ("window", "r_max", "m"):
            if ck[key] != getattr(self, key):
                raise ValueError(
                    f"checkpoint {key}={ck[key]} differs from this run's "
                    f"{key}={getattr(self, key)}; "
                    "resume with the same data and settings"
                )
        self.stage = ck["stage"]
        self._start_stage(be.model_from_json(ck["model_json"]), elapsed=float(ck["elapsed"]))
        self.module.load_state_dict(ck["module"])
        self.opt_theta.load_state_dict(ck["opt_theta"])
        if self.disc is not None and ck["disc"] is not None:
            self.disc.load_state_dict(ck["disc"])
            self.opt_disc.load_state_dict(ck["opt_disc"])
        self.g_model.set_state(ck["g_model"])
        self.g_real.set_state(ck["g_real"])
        self.step = int(ck["step"])
        self.gamma = ck["gamma"]
        self.best_state = ck["best_state"]
        self.best_score = ck["best_score"]
        self.epochs_since_best = int(ck["epochs_since_best"])
        self.stage_history = list(ck["history"])
        self.last_eval = ck.get("last_eval")
        if ck.get("high_model_json"):
            self.models["high"] = be.model_from_json(ck["high_model_json"])
