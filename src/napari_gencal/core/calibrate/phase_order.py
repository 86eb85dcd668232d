"""Which data phase plays the model's phase 1, 2 and 3: chosen from the data, explained to the user.

The three-phase model is not symmetric in its phases (method.md §2): phase 1 = {Z1 ≥ λ1}, phase 2 =
{Z1 < λ1, Z2 ≥ λ2}, phase 3 = the rest, and Z2 shares the εZ fields with Z1, so phase 2 lies
preferentially against phase 1 and phase 3 avoids it. Data whose two least-touching phases are
not phases 1 and 3 fit badly (electrode.tiff in the order NMC, pore, binder: pore S_V +24 %,
against −4 % in the order NMC, binder, pore; docs/decisions/calibration.md).

:func:`phase_contacts` measures how much each pair of phases touches, relative to a random
arrangement with the same fractions; :func:`candidate_orders` puts the least-touching pair at the
ends (two orders, one per end); :func:`choose_phase_order` lets short trial fits pick the end.
:func:`phase_order_advice` (the earlier check, still raised by the engine when it is driven
directly) says when another phase should be second.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "phase_contacts",
    "phase_order_advice",
    "candidate_orders",
    "choose_phase_order",
    "PhaseOrder",
    "CONTACT_RATIO",
]

#: Advise a change only when the two least-touching phases touch at most this fraction as much as
#: phases 1 and 3 of the given order (a clear difference, not noise; SOFC's three pairs are within
#: 0.9 of each other, electrode.tiff's 0.2).
CONTACT_RATIO = 0.7


def phase_contacts(sections: np.ndarray, n_phases: int) -> np.ndarray:
    """Relative contact ``c_ij`` of phases i ≠ j in phase-index sections ``(N, H, W)``.

    ``c_ij`` = the fraction of neighbouring pixel pairs (along y and x) that join phases i and j,
    divided by ``2 φ_i φ_j``, its value for independently placed pixels. 0 on the diagonal.
    """
    s = np.asarray(sections)
    counts = np.zeros((n_phases, n_phases))
    pairs = 0
    for ax in (1, 2):
        a = np.moveaxis(s, ax, 0)
        u, v = a[:-1].ravel(), a[1:].ravel()
        pairs += u.size
        diff = u != v
        np.add.at(counts, (u[diff], v[diff]), 1.0)
    counts = (counts + counts.T) / max(pairs, 1)
    phi = np.bincount(s.ravel(), minlength=n_phases)[:n_phases] / s.size
    expected = 2.0 * np.outer(phi, phi)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.where(expected > 0, counts / expected, 0.0)
    np.fill_diagonal(c, 0.0)
    return c


def phase_order_advice(
    sections: np.ndarray, labels: tuple, ratio: float = CONTACT_RATIO
) -> str | None:
    """A message when another phase should be second, else None (two phases: always None).

    Parameters
    ----------
    sections : ndarray
        Phase indices 0..k−1 in the order given, ``(N, H, W)``.
    labels : tuple
        The label value of each phase (for the message).
    ratio : float
        See :data:`CONTACT_RATIO`.
    """
    if len(labels) != 3:
        return None
    c = phase_contacts(sections, 3)
    pairs = {(0, 1): c[0, 1], (0, 2): c[0, 2], (1, 2): c[1, 2]}
    least = min(pairs, key=pairs.get)
    if least == (0, 2) or pairs[least] > ratio * pairs[(0, 2)]:
        return None
    middle = ({0, 1, 2} - set(least)).pop()
    a, b = least
    lab = [str(v) for v in labels]
    return (
        f"phase order: phases {lab[a]} and {lab[b]} touch least (relative contact "
        f"{pairs[least]:.2f}, against {pairs[(0, 2)]:.2f} for your first and third phase "
        f"{lab[0]}, {lab[2]}); the model puts its second phase against the first and keeps the "
        f"third away from it, so {lab[middle]} should be second: "
        f"--phases {lab[a]},{lab[middle]},{lab[b]} (or {lab[b]},{lab[middle]},{lab[a]}); on "
        "electrode.tiff this took pore S_V from +24 % to −4 %"
    )



@dataclass
class PhaseOrder:
    """The data phases in the model's order, and why.

    Attributes
    ----------
    perm : tuple of int
        ``perm[i]`` = the data phase (index in the user's phase map) that plays model phase i.
    reason : str
        One sentence for the user.
    contacts : ndarray
        Relative contacts :func:`phase_contacts` in the user's order.
    trials : dict
        Score of each order tried (``perm → score``; lower is better), when trial fits decided.
    """

    perm: tuple[int, ...]
    reason: str
    contacts: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    trials: dict[tuple[int, ...], float] = field(default_factory=dict)

    @property
    def identity(self) -> bool:
        """The user's order is kept."""
        return self.perm == tuple(range(len(self.perm)))

    def apply(self, indices: np.ndarray) -> np.ndarray:
        """Re-index data phase indices to model phase indices."""
        inv = np.argsort(self.perm).astype(np.uint8)
        return inv[np.asarray(indices)]

    def to_dict(self, labels: tuple) -> dict[str, Any]:
        """JSON-ready record for the model file."""
        k = len(self.perm)
        lab = [_plain(v) for v in labels]
        return {
            "model_order_labels": [lab[p] for p in self.perm],
            "user_order_labels": lab,
            "reason": self.reason,
            "relative_contacts": {
                f"{lab[i]}-{lab[j]}": round(float(self.contacts[i, j]), 4)
                for i in range(k)
                for j in range(i + 1, k)
            }
            if self.contacts.size
            else {},
            "trial_scores": {
                ",".join(str(lab[p]) for p in perm): (
                    round(float(v), 6) if np.isfinite(v) else None
                )
                for perm, v in self.trials.items()
            },
        }


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def candidate_orders(
    sections: np.ndarray, n_phases: int, three_d: bool = False
) -> tuple[list[tuple[int, ...]], str]:
    """Model orders worth a trial fit, from the relative contacts, and the contacts in words.

    Two phases: with 3D data both, which :mod:`.connectivity_order` tells apart (phase 1 is an
    excursion set, phase 2 its complement: they differ in connectivity); with sections alone the
    user's order.

    The model keeps its phases 1 and 3 apart (phase 2 lies against phase 1), so the pair of data
    phases that touch least goes to the ends and the third into the middle: two orders, one per
    end. Which end is phase 1 is left to trial fits: no single statistic told it reliably (a
    blob-likeness rule chose the wrong end on two of three synthetic sets whose order is known).
    The middle phase is not put to trial even when the contacts nearly tie: on
    SOFC_hr_input.tif (0–2 0.13, 0–1 and 1–2 0.15) short fits preferred middle 0 in three seeds,
    and the full calibration then missed phase 0's S_V by 5 % and its chords by 6–7 % (twice),
    while middle 1 — the contacts' choice — fitted within 4 % (docs/decisions/calibration.md).

    Returns
    -------
    (list of perm, str)
        Candidate ``perm`` tuples (``perm[i]`` = data phase of model phase i) and the sorted
        relative contacts of the label pairs as text.
    """
    if n_phases == 2 and three_d:
        return [(0, 1), (1, 0)], "two phases: either may be the excursion set"
    if n_phases != 3:
        return [tuple(range(n_phases))], "two phases: phase 1 is the first label given"
    c = phase_contacts(sections, 3)
    pairs = {(0, 1): c[0, 1], (0, 2): c[0, 2], (1, 2): c[1, 2]}
    ranked = sorted(pairs, key=pairs.get)
    a, b = ranked[0]
    mid = ({0, 1, 2} - {a, b}).pop()
    return [(a, mid, b), (b, mid, a)], ", ".join(f"{i}-{j} {pairs[(i, j)]:.2f}" for i, j in ranked)


def choose_phase_order(
    sections: np.ndarray,
    labels: tuple,
    trial: Any = None,
) -> PhaseOrder:
    """Which data phase plays the model's phase 1, 2 and 3 (two phases: the user's order).

    Parameters
    ----------
    sections : ndarray
        Phase indices ``(N, H, W)`` in the user's order.
    labels : tuple
        Label value of each phase (for the explanation).
    trial : callable, optional
        ``trial(perm) → score`` (lower is better): a short fit of the model in that order. With
        several candidates (:func:`candidate_orders`) the best-scoring one is chosen; without a
        trial the first candidate is.

    Returns
    -------
    PhaseOrder
    """
    k = len(labels)
    lab = [str(_plain(v)) for v in labels]
    cands, contact_text = candidate_orders(sections, k)
    c = phase_contacts(sections, k) if k == 3 else np.zeros((0, 0))
    if k != 3:
        return PhaseOrder(cands[0], contact_text, c)
    scores: dict[tuple[int, ...], float] = {}
    if trial is not None and len(cands) > 1:
        for perm in cands:
            scores[perm] = float(trial(perm))
        best = min(scores, key=scores.get)
    else:
        best = cands[0]
    first, mid, last = best
    reason = (
        f"{lab[first]}, {lab[mid]}, {lab[last]} as the model's phases 1, 2, 3: "
        f"{lab[first]} and {lab[last]} touch least (relative contacts of the label indices: "
        f"{contact_text}), and the model keeps its phases 1 and 3 apart"
    )
    ranked = sorted(c[i, j] for i in range(3) for j in range(i + 1, 3))
    if ranked[0] > CONTACT_RATIO * ranked[1]:
        reason += " (the contacts differ little: the order matters less for this material)"
    if scores:
        tried = "; ".join(
            f"{','.join(lab[p] for p in perm)}: {v:.4f}" for perm, v in sorted(scores.items(),
                                                                        key=lambda kv: kv[1])
        )  # fmt: skip
        reason += f"; short trial fits chose the first (score, lower is better: {tried})"
    return PhaseOrder(best, reason, c, scores)
