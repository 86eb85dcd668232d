"""CPU and CUDA do the same calibration work (skipped without a CUDA device)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_gencal.core.fields import radial_section_spectrum
from napari_gencal.core.model import ExcursionModel, ExcursionModule
from napari_gencal.core.phases import PhaseMap
from napari_gencal.core.tppf import radial_tppf, tppf_loss

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_section_spectra_agree_on_cpu_and_cuda():
    th = torch.linspace(1.0, 0.0, 24, dtype=torch.float64)
    cpu = radial_section_spectrum(th, 128)
    gpu = radial_section_spectrum(th.cuda(), 128).cpu()
    torch.testing.assert_close(cpu, gpu, rtol=1e-10, atol=1e-12)


def _step(device: str, noise: dict[str, torch.Tensor], data_curves: torch.Tensor):
    """One TPPF step of the differentiable model from given white noise; returns the loss and
    the gradient of every parameter (on the CPU)."""
    model = ExcursionModel.default(
        "high", m=8, fractions=[0.4, 0.35, 0.25], width=2.5, phase_map=PhaseMap((0, 1, 2))
    )
    module = ExcursionModule.from_model(model, device=device, dtype=torch.float64)
    size = 64
    spec = module.section_spectra(module.used_kernels(), size)

    def field(name: str) -> torch.Tensor:
        w = noise[name].to(device)
        amp = spec[name].clamp_min(1e-20).sqrt()
        return torch.fft.irfft2(torch.fft.rfft2(w) * amp, s=(size, size))[..., :48, :48]

    a = module.a
    ez = field("eps_Z")
    xt = torch.sqrt(1 - a) * field("eps_X") + torch.sqrt(a) * ez
    yt = torch.sqrt(1 - a) * field("eps_Y") + torch.sqrt(a) * ez
    z1 = (xt * xt).sum(0) + module.sigma1 * field("X1")[0]
    z2 = (yt * yt).sum(0) + module.sigma2 * field("X2")[0]
    soft = module.phases(z1[None], z2[None], soft=True)
    loss = tppf_loss(radial_tppf(soft, 10), data_curves.to(device))
    loss.backward()
    grads = {n: p.grad.detach().cpu() for n, p in module.named_parameters()}
    return float(loss.detach()), grads


def test_a_calibration_step_agrees_on_cpu_and_cuda():
    g = torch.Generator().manual_seed(0)
    noise = {
        n: torch.randn(3 if n.startswith("eps") else 1, 64, 64, generator=g, dtype=torch.float64)
        for n in ("X1", "X2", "eps_X", "eps_Y", "eps_Z")
    }
    rng = np.random.default_rng(1)
    data = torch.as_tensor(rng.uniform(0.0, 0.4, (3, 3, 11)))
    l_cpu, g_cpu = _step("cpu", noise, data)
    l_gpu, g_gpu = _step("cuda", noise, data)
    assert l_cpu == pytest.approx(l_gpu, rel=1e-9)
    for name in g_cpu:
        torch.testing.assert_close(g_cpu[name], g_gpu[name], rtol=1e-7, atol=1e-10)
