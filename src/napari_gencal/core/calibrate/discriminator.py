"""The 2D discriminator of Algorithms 2 and 3 and the sampler of real training windows.

Architecture (method.md §5, DCGAN style without batch norm): stride-2 4×4 convolutions
``k → c → 2c → 4c → 8c → 8c …`` (``c`` = ``width``, capped at ``8c``) until the feature map is 4×4,
each followed by LeakyReLU(0.2); then flatten → Linear → sigmoid. Batch norm is left out on purpose:
real and fake batches are scored separately and batch statistics would leak between them.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["Discriminator", "RealSampler", "disc_loss", "adversarial_loss"]


class Discriminator(nn.Module):
    """DCGAN-style critic on one-hot ``(B, k, w, w)`` windows; ``forward`` returns P(real).

    Parameters
    ----------
    n_phases : int
        Input channels ``k`` (one-hot phases).
    window : int
        Side ``w`` of the square input (power of two ≥ 8).
    width : int
        Channels of the first convolution (64 in DCGAN).
    """

    def __init__(self, n_phases: int, window: int, width: int = 64) -> None:
        super().__init__()
        if window < 8 or window & (window - 1):
            raise ValueError(f"discriminator window must be a power of two ≥ 8, got {window}")
        layers: list[nn.Module] = []
        c_in, c_out, size = n_phases, width, window
        while True:
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            size //= 2
            c_in = c_out
            if size <= 4:
                break
            c_out = min(2 * c_out, 8 * width)
        self.window = window
        self.n_phases = n_phases
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in * size * size, 1)
        for mod in self.modules():  # DCGAN initialisation
            if isinstance(mod, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(mod.weight, 0.0, 0.02)
                nn.init.zeros_(mod.bias)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-sigmoid scores ``(B,)`` (numerically stable losses use these)."""
        return self.head(self.features(x).flatten(1)).squeeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Probability ``(B,)`` that each window is real data."""
        return torch.sigmoid(self.logits(x))


def disc_loss(disc: Discriminator, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Discriminator loss: mean of BCE(real → 1) and BCE(fake → 0) (ln 2 ≈ 0.69 at chance)."""
    bce = nn.functional.binary_cross_entropy_with_logits
    lr, lf = disc.logits(real), disc.logits(fake)
    return 0.5 * (bce(lr, torch.ones_like(lr)) + bce(lf, torch.zeros_like(lf)))


def adversarial_loss(disc: Discriminator, fake: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss BCE(fake → 1) = −log D(fake)."""
    lf = disc.logits(fake)
    return nn.functional.binary_cross_entropy_with_logits(lf, torch.ones_like(lf))


class RealSampler:
    """Random ``w×w`` cutouts of random data sections, with the eight square symmetries.

    Parameters
    ----------
    sections : ndarray
        Phase indices ``(N, H, W)`` (uint8), ``H, W ≥ window``.
    n_phases : int
        Number of phases ``k``.
    window : int
        Cutout side.
    device : torch.device
        Where the one-hot batches are made.
    """

    def __init__(
        self, sections: np.ndarray, n_phases: int, window: int, device: torch.device
    ) -> None:
        n, h, w = sections.shape
        if h < window or w < window:
            raise ValueError(f"sections of {h}×{w} are smaller than the window {window}")
        self.data = torch.as_tensor(np.ascontiguousarray(sections), dtype=torch.uint8).to(device)
        self.n_phases = n_phases
        self.window = window
        self.device = device

    def sample(self, batch: int, generator: torch.Generator) -> torch.Tensor:
        """One-hot batch ``(batch, k, w, w)``, float32; randomness only from ``generator``."""
        n, h, w = self.data.shape
        win = self.window
        # Draw on the CPU so that the stream is the same on every device.
        idx = torch.randint(0, n, (batch,), generator=generator).tolist()
        ys = torch.randint(0, h - win + 1, (batch,), generator=generator).tolist()
        xs = torch.randint(0, w - win + 1, (batch,), generator=generator).tolist()
        sym = torch.randint(0, 8, (batch,), generator=generator).tolist()
        crops = []
        for i, y, x, s in zip(idx, ys, xs, sym, strict=True):
            c = self.data[i, y : y + win, x : x + win]
            c = torch.rot90(c, s % 4, dims=(0, 1))
            if s >= 4:
                c = torch.flip(c, dims=(1,))
            crops.append(c)
        t = torch.stack(crops).long()
        return nn.functional.one_hot(t, self.n_phases).permute(0, 3, 1, 2).float().contiguous()
