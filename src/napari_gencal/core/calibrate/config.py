"""Settings of a calibration run (method.md §5), with a fast preset for front ends.

Every number that method.md leaves open is a field here, so that a user can change it and a
model file can record it. ``CalibrationConfig()`` holds the method's values (batch 32, window 128,
learning rates, early stopping from epoch 101 with patience 500) with a bounded budget;
``CalibrationConfig.preset`` gives the named *budgets* ``"minutes"`` (what the CLI, the API, the
demo and the napari widget start from: minutes on a laptop CPU; ``"quick"`` is its old name) and
``"paper"`` (the paper's budget). No preset sets a length: window, r_max and the kernel radius come
from the data (:mod:`.plan`), whatever the budget.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CalibrationConfig", "PRESETS", "largest_window"]

#: Smallest discriminator window accepted (three stride-2 convolutions down to 4×4).
MIN_WINDOW = 32


def largest_window(height: int, width: int, cap: int = 128) -> int:
    """Largest power of two ``≤ min(height, width, cap)``; 0 when even 32 does not fit."""
    side = min(int(height), int(width), int(cap))
    if side < MIN_WINDOW:
        return 0
    return 1 << int(math.floor(math.log2(side)))


@dataclass
class CalibrationConfig:
    """Everything that decides a calibration run.

    Parameters
    ----------
    algorithm : {1, 2, 3}
        1 = TPPF loss only, 2 = adversarial only, 3 = combined (the method).
    model : {"high", "low", "both"}
        Which kernel parametrization to calibrate. ``"both"``: high-parametric first, then reduce to
        the covariance family and recalibrate the low-parametric model with Algorithm 3.
    window : int or None
        Discriminator / section window ``w`` (power of two, ≥ 32). None: 128, or the largest power
        of two that fits the data.
    batch : int
        Sections per optimizer step ``B``.
    working_factor : int or None
        Calibrate on every f-th pixel and give the model ``length_scale = f`` (exact). None: from
        the data (images made of f×f blocks, or a structure too large for the budget; never
        coarser than keeps the thinnest phase at 3 px mean chords). 1: native resolution.
    m : int or None
        Kernel radius. None: from the data by the r_max rule of method.md §4 (capped at ``m_cap``).
    m_cap : int
        Largest kernel radius chosen automatically.
    r_max : int or None
        Largest TPPF distance. None: the r_max rule on the data.
    r_max_cap : int
        Largest r_max chosen automatically (method.md §4: 100). Model sections for the TPPF loss
        have a side of at least 4·r_max, so this bounds the cost of a step.
    n_chi2, nu : int, float
        Degrees of freedom of the χ² fields; steepness of the sigmoid approximation.
    straight_through : bool
        Losses see hard-threshold sections while gradients flow through the sigmoid relaxation
        (straight-through estimator). False: the losses see the soft sections Ξ̃ (method.md), whose
        TPPF drop near r = 0 is 16–27 % below that of the hard sections, so a fit leaves hard
        realizations rougher than the data. True in the quick preset (measured: better on the
        electrode and SOFC benchmarks, as good on the known truth; docs/decisions/calibration.md).
    match_fractions : bool
        Evaluate and keep the parameters with thresholds λ1, λ2 set so that the model's one-point
        law gives the data's volume fractions exactly (Monte Carlo over the scalar marginals, see
        :func:`~napari_gencal.core.model.thresholds_for_fractions`); training itself is unchanged.
        False: evaluate and keep the thresholds as trained (soft sections bias them, and the
        fixed-seed evaluation sections pick epochs whose hard fractions are off by ~0.01–0.02).
    gamma : float or None
        Weight of the TPPF term in Algorithm 3's model loss ``adv + γ·TPPF``. None: chosen at the
        first adversarial step so that both terms are equally large.
    lr_theta, lr_theta_low, lr_disc, lr_disc_low : float
        Adam learning rates of the model (high / low parametrization) and the discriminator.
    lr_decay : float or None
        The model's learning rate falls geometrically to ``lr_decay`` times its start over the
        budget (the time limit, else the step budget). None or 1: constant (method.md).
    betas : tuple of float
        Adam betas for both optimizers.
    pretrain_model_steps, pretrain_disc_steps : int
        Algorithm 3 pre-training: TPPF-only model steps, then discriminator steps with θ fixed.
    skip_threshold : float or None
        Algorithm 3: skip the discriminator update when its loss is below this (None: never skip).
    steps_per_epoch : int
        Optimizer steps per epoch.
    early_stop_start : int
        Track the best parameters from this epoch on.
    patience : int or None
        Stop after ``patience`` epochs without a better evaluation score. None: a time-limited
        run uses its whole budget (no early stopping); 500 epochs without a time budget.
    max_epochs : int
        Hard epoch limit.
    time_limit : float or None
        Wall-clock limit in seconds (None: none).
    eval_sections, eval_size : int
        Hard-threshold sections simulated per evaluation, and their side (0: the window).
    score : {"paper", "surface"}
        What an evaluation scores: ``"paper"`` mean |ΔVF| + mean |ΔS_V| (1/pixel; the paper's
        criterion); ``"surface"`` ½(mean + worst) of the phases' relative S_V errors — what the
        verdict judges; needs ``match_fractions`` (volume fractions are then exact in law).
    disc_width : int
        Channels of the discriminator's first convolution (DCGAN: 64).
    init_scale_search : bool
        Choose the initial kernel length scale by a small search on the TPPF loss.
    seed : int
        Seed of every random stream of the run.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``…
    checkpoint : str or None
        Path to write a checkpoint to at the end of every ``checkpoint_every`` epochs.
    checkpoint_every : int
        Epochs between checkpoints.
    construction : {"auto", "paper", "plurigaussian"}
        Three phases: the truncation rule (:mod:`~napari_gencal.core.model.truncation`).
        ``"auto"``: the main stage learns the rule's tilt from the paper's rule (it stays near 0
        where the paper's rule fits: electrode.tiff 0.5°; SOFC 12°, middle phase S_V +4.4 % →
        +0.2 %); ``"paper"``: the paper's rule; ``"plurigaussian"``: tilt and coating learned
        (the remedy for connectivity misses).
    connectivity : {"auto", "off"}
        Two phases of 3D data: ``"auto"`` compares both orders (which phase is the excursion
        set and which its complement) by the percolating fractions of their starting models'
        twins against the data's and takes the closer one, then picks σ1 (Gaussian against χ²
        part) the same way and keeps it fixed in the main stage (:mod:`.connectivity_order`; a
        12 % pore space that percolates needs the complement of a χ²-dominated set). ``"off"``:
        the user's order, σ1 learned.
    fix_sigma1 : bool
        Keep σ1 at its starting value (set by the pipeline when connectivity chose it).
    trial_steps : int
        Optimizer steps of each phase-order trial fit (three phases; Algorithm 1). Trials also
        stop at their share of the time budget; fewer steps decide on less evidence.
    learn_truncation : {"none", "tilt", "all"}
        What the engine learns of the truncation rule (set from ``construction`` by the
        pipeline; order trials learn none).
    euler_weight : float
        Weight of the connectivity term in the model loss: the squared differences of the
        sections' Euler number densities (per pixel) of the model and the data, per phase. The
        Euler density is a sum of 1-, 2- and 4-point configuration probabilities, so it is in the
        units of the TPPF loss; 0 switches it off.
    score_euler : float
        Weight of the connectivity error in an evaluation's score (``score="surface"``): the
        Euler densities' errors relative to the data's components + holes per area, mean and
        worst phase averaged, as the S_V part. 0: S_V only.
    interpolation : {"linear", "nearest"}
        How the high-parametric radial kernel is evaluated between integer radii (stored in the
        model). ``"nearest"`` is method.md's θ[round|s|]; its shells give voxel-scale rough
        boundaries (S_V +12…16 % on SOFC) and stretch badly under anisotropy, so ``"linear"`` is
        the default (docs/decisions/calibration.md).
    """

    algorithm: int = 3
    model: str = "high"
    window: int | None = None
    batch: int = 32
    working_factor: int | None = None
    m: int | None = None
    m_cap: int = 100
    r_max: int | None = None
    r_max_cap: int = 100
    n_chi2: int = 3
    nu: float = 10.0
    interpolation: str = "linear"
    construction: str = "auto"
    learn_truncation: str = "none"
    trial_steps: int = 250
    connectivity: str = "auto"
    fix_sigma1: bool = False
    euler_weight: float = 0.0
    score_euler: float = 0.0
    straight_through: bool = False
    match_fractions: bool = True
    gamma: float | None = None
    lr_theta: float = 1e-3
    lr_theta_low: float = 1e-2
    lr_disc: float = 1e-4
    lr_disc_low: float = 1e-4
    lr_decay: float | None = None
    betas: tuple[float, float] = (0.5, 0.999)
    pretrain_model_steps: int = 100
    pretrain_disc_steps: int = 100
    skip_threshold: float | None = 0.4
    steps_per_epoch: int = 50
    early_stop_start: int = 101
    patience: int | None = 500
    max_epochs: int = 2000
    time_limit: float | None = None
    eval_sections: int = 16
    eval_size: int = 0
    score: str = "paper"
    disc_width: int = 64
    init_scale_search: bool = True
    seed: int = 0
    device: str = "auto"
    checkpoint: str | None = None
    checkpoint_every: int = 10
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.betas = tuple(float(b) for b in self.betas)  # type: ignore[assignment]
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Raise ValueError naming the first bad setting and the allowed values."""
        if self.algorithm not in (1, 2, 3):
            raise ValueError(f"algorithm must be 1, 2 or 3, got {self.algorithm!r}")
        if self.model not in ("high", "low", "both"):
            raise ValueError(f"model must be 'high', 'low' or 'both', got {self.model!r}")
        if self.window is not None and (
            self.window < MIN_WINDOW or self.window & (self.window - 1) != 0
        ):
            raise ValueError(
                f"window must be a power of two ≥ {MIN_WINDOW} (e.g. 64 or 128), got {self.window}"
            )
        positive_ints = {
            "batch": self.batch,
            "steps_per_epoch": self.steps_per_epoch,
            "max_epochs": self.max_epochs,
            "eval_sections": self.eval_sections,
            "disc_width": self.disc_width,
            "checkpoint_every": self.checkpoint_every,
            "m_cap": self.m_cap,
            "r_max_cap": self.r_max_cap,
            "trial_steps": self.trial_steps,
        }
        for name, v in positive_ints.items():
            if int(v) != v or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        for name in ("pretrain_model_steps", "pretrain_disc_steps", "early_stop_start", "patience"):
            v = getattr(self, name)
            if v is None and name == "patience":
                continue
            if int(v) != v or v < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {v!r}")
        if self.working_factor is not None and (
            int(self.working_factor) != self.working_factor or not 1 <= self.working_factor <= 16
        ):
            raise ValueError(
                f"working_factor must be an integer in 1..16 (1 = native resolution), "
                f"got {self.working_factor!r}"
            )
        if self.m is not None and not 1 <= self.m <= 200:
            raise ValueError(f"kernel radius m must be in 1..200, got {self.m}")
        if self.r_max is not None and self.r_max < 1:
            raise ValueError(f"r_max must be ≥ 1, got {self.r_max}")
        if not 1 <= self.n_chi2 <= 6:
            raise ValueError(f"n_chi2 must be in 1..6, got {self.n_chi2}")
        if not (self.nu > 0 and math.isfinite(self.nu)):
            raise ValueError(f"nu must be a positive number, got {self.nu}")
        if self.learn_truncation in (True, False):  # older files and callers: a bool
            self.learn_truncation = "all" if self.learn_truncation else "none"
        if self.learn_truncation not in ("none", "tilt", "all"):
            raise ValueError(
                f"learn_truncation must be 'none', 'tilt' or 'all', got {self.learn_truncation!r}"
            )
        if self.construction not in ("auto", "paper", "plurigaussian"):
            raise ValueError(
                "construction must be 'auto', 'paper' or 'plurigaussian', got "
                f"{self.construction!r}"
            )
        if self.connectivity not in ("auto", "off"):
            raise ValueError(f"connectivity must be 'auto' or 'off', got {self.connectivity!r}")
        for name in ("euler_weight", "score_euler"):
            v = getattr(self, name)
            if not (v >= 0 and math.isfinite(v)):
                raise ValueError(f"{name} must be a number ≥ 0, got {v}")
        if self.gamma is not None and not (self.gamma >= 0 and math.isfinite(self.gamma)):
            raise ValueError(f"gamma must be ≥ 0 or None (automatic), got {self.gamma}")
        for name in ("lr_theta", "lr_theta_low", "lr_disc", "lr_disc_low"):
            v = getattr(self, name)
            if not (v > 0 and math.isfinite(v)):
                raise ValueError(f"{name} must be a positive number, got {v}")
        if self.lr_decay is not None and not 0 < self.lr_decay <= 1:
            raise ValueError(f"lr_decay must lie in (0, 1] or be None, got {self.lr_decay}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas}")
        if self.time_limit is not None and not self.time_limit > 0:
            raise ValueError(
                f"time_limit must be a positive number of seconds, got {self.time_limit}"
            )
        if self.interpolation not in ("linear", "nearest"):
            raise ValueError(
                f"interpolation must be 'linear' or 'nearest', got {self.interpolation!r}"
            )
        if self.score not in ("paper", "surface"):
            raise ValueError(f"score must be 'paper' or 'surface', got {self.score!r}")
        if self.score == "surface" and not self.match_fractions:
            raise ValueError(
                "score='surface' leaves volume fractions out and needs match_fractions=True "
                "(or use score='paper')"
            )
        if self.eval_size and (self.eval_size < 16):
            raise ValueError(f"eval_size must be 0 (= window) or ≥ 16, got {self.eval_size}")

    # ------------------------------------------------------------------ helpers
    @property
    def uses_discriminator(self) -> bool:
        """Algorithms 2 and 3 train a discriminator."""
        return self.algorithm in (2, 3)

    def patience_epochs(self, epoch_seconds: float | None, time_limit: float | None) -> float:
        """Epochs without improvement that end a run (see ``patience``).

        ``time_limit``: the budget of the current stage (seconds); ``epoch_seconds``: what an epoch
        costs on this data.
        """
        if self.patience is not None:
            return int(self.patience)
        if time_limit is None:
            return 500
        # A time-limited run uses its time: improvements come in bursts minutes apart, and an
        # epoch count derived from the current step cost would shrink whenever the machine is
        # busy (a loaded machine stopped SEM_hr_input.tif after 2.3 of its 5 minutes).
        return math.inf

    def replace(self, **changes: Any) -> CalibrationConfig:
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (stored in model files and checkpoints)."""
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CalibrationConfig:
        """Inverse of :meth:`to_dict`; unknown keys are refused with their names."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown calibration settings {unknown}; known: {sorted(names)}")
        d = dict(d)
        if "betas" in d:
            d["betas"] = tuple(d["betas"])
        return cls(**d)

    @classmethod
    def preset(cls, name: str, **changes: Any) -> CalibrationConfig:
        """A named budget (``"minutes"``, ``"default"``, ``"paper"``) with optional changes.

        ``"quick"`` is accepted as the earlier name of ``"minutes"``.
        """
        name = PRESET_ALIASES.get(name, name)
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ValueError(f"unknown calibration settings {unknown}; known: {sorted(names)}")
        return cls(**{**PRESETS[name], **changes})



#: Named budgets. "minutes" trades the method's batch and patience for minutes on a laptop CPU
#: (the front ends' default); "paper" is the paper's budget (hours; GPU recommended). None of them
#: sets a length (window, r_max, m): those follow the data (plan.py), so a preset tuned on one
#: material cannot cut another's kernels.
PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "minutes": {
        "batch": 8,
        "disc_width": 32,
        "pretrain_model_steps": 150,
        "pretrain_disc_steps": 50,
        "steps_per_epoch": 25,
        "early_stop_start": 1,
        "patience": None,
        "max_epochs": 100000,
        "time_limit": 300.0,
        "eval_sections": 16,
        "eval_size": 256,
        "score": "surface",
        "lr_theta": 1e-2,
        "lr_theta_low": 2e-2,
        "lr_disc": 2e-4,
        "straight_through": True,
    },
    "paper": {
        "window": 128,
        "batch": 32,
        "m": 100,
        "early_stop_start": 101,
        "patience": 500,
        "max_epochs": 10000,
    },
}
#: Earlier preset names.
PRESET_ALIASES = {"quick": "minutes"}
