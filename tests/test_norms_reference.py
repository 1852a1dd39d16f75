"""The 2017-2025 norms against independent plain-PyTorch re-implementations of their papers'
formulas, in float64 with a tight tolerance (docs/norms.md has the formulas)."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from lnexp import config, norms
from lnexp.models import build_model

TOL = {"atol": 1e-12, "rtol": 1e-12}
SHAPES = {"features": (6, 5), "image": (4, 5, 3, 2), "sequence": (4, 7, 5)}


def _x(layout: str, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(SHAPES[layout], generator=g, dtype=torch.float64) * 1.7 + 0.4


def _chan(p: torch.Tensor, layout: str) -> torch.Tensor:
    """A (C,) vector broadcast against the layout: channels at dim 1 of images, last else."""
    return p.view(1, -1, 1, 1) if layout == "image" else p


def _randomize(module: torch.nn.Module, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.rand(p.shape, generator=g, dtype=torch.float64) + 0.25)


@pytest.mark.parametrize("layout", ["features", "image", "sequence"])
def test_dyt_is_gamma_tanh_alpha_x_plus_beta(layout):
    m = norms.create("dyt", 5, layout=layout, dyt_alpha=0.7).double()
    assert float(m.alpha.detach()) == pytest.approx(0.7)  # initialised from model.dyt_alpha
    _randomize(m)
    x = _x(layout)
    ref = _chan(m.weight.detach(), layout) * torch.tanh(m.alpha.detach() * x) \
        + _chan(m.bias.detach(), layout)
    torch.testing.assert_close(m(x), ref, **TOL)
    assert m.alpha.dim() == 0 and m.weight.shape == m.bias.shape == (5,)


def test_ln_pixel_standardizes_each_pixel_over_its_channels():
    m = norms.create("ln_pixel", 5, eps=1e-5, layout="image").double()
    _randomize(m)
    x = _x("image")
    mean = x.mean(dim=1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=1, keepdim=True)
    ref = (x - mean) / torch.sqrt(var + 1e-5) * _chan(m.inner.weight.detach(), "image") \
        + _chan(m.inner.bias.detach(), "image")
    torch.testing.assert_close(m(x), ref, **TOL)


@pytest.mark.parametrize("layout", ["features", "sequence"])
def test_ln_pixel_is_ln_off_images(layout):
    x = _x(layout)
    a = norms.create("ln_pixel", 5, layout=layout).double()
    b = norms.create("ln", 5, layout=layout).double()
    torch.testing.assert_close(a(x), b(x), **TOL)


def _renorm_reference(x, mu, sigma, gamma, beta, eps, rmax, dmax, dims, layout):
    """Ioffe 2017, Algorithm 1, written out (r and d detached: treated as constants)."""
    mu_b = x.mean(dim=dims, keepdim=True)
    sigma_b = torch.sqrt(((x - mu_b) ** 2).mean(dim=dims, keepdim=True) + eps)
    r = torch.clamp(sigma_b.detach() / _chan(sigma, layout), 1 / rmax, rmax)
    d = torch.clamp((mu_b.detach() - _chan(mu, layout)) / _chan(sigma, layout), -dmax, dmax)
    y = (x - mu_b) / sigma_b * r + d
    return _chan(gamma, layout) * y + _chan(beta, layout), mu_b, sigma_b


@pytest.mark.parametrize("layout", ["features", "image", "sequence"])
def test_batch_renorm_train_step_eval_and_gradient(layout):
    dims = {"features": (0,), "image": (0, 2, 3), "sequence": (0, 1)}[layout]
    m = norms.create("batch_renorm", 5, eps=1e-3, layout=layout, renorm_rmax=1.5,
                     renorm_dmax=0.5).double()
    _randomize(m)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():  # running statistics away from the batch's, so r and d clip
        m.running_mean.copy_(torch.randn(5, generator=g, dtype=torch.float64))
        m.running_std.copy_(torch.rand(5, generator=g, dtype=torch.float64) + 0.5)
    mu0, sigma0 = m.running_mean.clone(), m.running_std.clone()
    gamma, beta = m.weight.detach().clone(), m.bias.detach().clone()
    x = _x(layout).requires_grad_(True)
    y = m(x)
    xr = x.detach().clone().requires_grad_(True)
    ref, mu_b, sigma_b = _renorm_reference(xr, mu0, sigma0, gamma, beta, 1e-3, 1.5, 0.5, dims,
                                           layout)
    torch.testing.assert_close(y, ref, **TOL)
    w = torch.randn(y.shape, generator=g, dtype=torch.float64)
    (y * w).sum().backward()
    (ref * w).sum().backward()
    torch.testing.assert_close(x.grad, xr.grad, **TOL)  # r, d held constant
    torch.testing.assert_close(m.running_mean, mu0 + 0.1 * (mu_b.detach().reshape(-1) - mu0),
                               **TOL)
    torch.testing.assert_close(m.running_std,
                               sigma0 + 0.1 * (sigma_b.detach().reshape(-1) - sigma0), **TOL)
    m.eval()
    x2 = _x(layout, seed=5)
    ref_eval = (x2 - _chan(m.running_mean, layout)) / _chan(m.running_std, layout) \
        * _chan(gamma, layout) + _chan(beta, layout)
    torch.testing.assert_close(m(x2), ref_eval, **TOL)


def test_batch_renorm_with_rmax_1_dmax_0_is_batchnorm_in_train_mode():
    x = _x("image")
    a = norms.create("batch_renorm", 5, layout="image", renorm_rmax=1.0,
                     renorm_dmax=0.0).double()
    b = norms.create("bn", 5, layout="image").double()
    torch.testing.assert_close(a(x), b(x), atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("layout", ["features", "image", "sequence"])
def test_frn_with_tlu(layout):
    m = norms.create("frn", 5, eps=1e-6, layout=layout).double()
    _randomize(m)
    with torch.no_grad():
        m.tau.sub_(0.8)  # some values below tau, some above
    x = _x(layout)
    if layout == "features":  # the paper's 1x1 case: nu2 = x^2, a learned eps
        nu2, eps = x**2, 1e-6 + m.eps_l.detach().abs()
    else:
        nu2 = (x**2).mean(dim=(2, 3) if layout == "image" else (1,), keepdim=True)
        eps = 1e-6
        assert m.eps_l is None
    y = _chan(m.weight.detach(), layout) * x / torch.sqrt(nu2 + eps) + _chan(m.bias.detach(),
                                                                             layout)
    ref = torch.where(y > _chan(m.tau.detach(), layout), y, _chan(m.tau.detach(), layout))
    torch.testing.assert_close(m(x), ref, **TOL)


def test_weight_standardization_linear_and_conv():
    cfg = config.from_mapping({"model": {"weight_standardization": True, "in_features": 6,
                                         "out_features": 4}})
    model = build_model(cfg.model).double()
    lin = model.linears()[0]
    x = _x("features")[:, :5]
    x = torch.cat([x, x[:, :1]], dim=1)
    w = lin.weight.detach()
    mean = w.mean(dim=1, keepdim=True)
    var = ((w - mean) ** 2).mean(dim=1, keepdim=True)
    ref = x @ ((w - mean) / torch.sqrt(var + 1e-5)).T + lin.bias.detach()
    torch.testing.assert_close(lin(x), ref, **TOL)
    img = config.from_mapping({"data": {"layout": "image", "height": 4, "width": 4},
                               "model": {"weight_standardization": True, "in_features": 3,
                                         "out_features": 4, "norm": "group"}})
    conv = build_model(img.model, "image").double().linears()[0]
    xi = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    w = conv.weight.detach()
    flat = w.reshape(4, -1)
    mean = flat.mean(dim=1, keepdim=True)
    var = ((flat - mean) ** 2).mean(dim=1, keepdim=True)
    ws = ((flat - mean) / torch.sqrt(var + 1e-5)).reshape(w.shape)
    torch.testing.assert_close(conv(xi), F.conv2d(xi, ws, conv.bias.detach(), padding=1), **TOL)
    off = build_model(config.from_mapping({}).model).double().linears()[0]
    assert type(off) is torch.nn.Linear  # off by default
