"""Which phase should be second: a check of the label → phase order for three-phase data.

The three-phase model is not symmetric in its phases (method.md §2): phase 1 = {Z1 ≥ λ1}, phase 2 =
{Z1 < λ1, Z2 ≥ λ2}, phase 3 = the rest, and Z2 shares the εZ fields with Z1, so phase 2 lies
preferentially against phase 1 and phase 3 avoids it. Data whose two least-touching phases are
not phases 1 and 3 fit badly (electrode.tiff in the order NMC, pore, binder: pore S_V +24 %,
against −4 % in the order NMC, binder, pore; docs/decisions/calibration.md).

:func:`phase_contacts` measures how much each pair of phases touches, relative to a random
arrangement with the same fractions; :func:`phase_order_advice` says when another phase should be
second.
"""

from __future__ import annotations

import numpy as np

__all__ = ["phase_contacts", "phase_order_advice", "CONTACT_RATIO"]

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
