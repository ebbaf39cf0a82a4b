"""Gradient clipping on real views clips exactly as torch's clip_grad_norm_ does, complex weights included."""

from __future__ import annotations

import torch
from torch import nn

from fno_forecast.training.gradients import clip_gradients


def _params_with_grads(scale: float) -> list[nn.Parameter]:
    generator = torch.Generator().manual_seed(0)
    params = [
        nn.Parameter(torch.zeros(4, 3, 5, 2, dtype=torch.complex64)),
        nn.Parameter(torch.zeros(7)),
        nn.Parameter(torch.zeros(2, 3)),
    ]
    for p in params:
        p.grad = scale * torch.randn(p.shape, dtype=p.dtype, generator=generator)
    params.append(nn.Parameter(torch.zeros(3)))  # no gradient: ignored
    return params


def test_clip_gradients_matches_clip_grad_norm() -> None:
    for scale, max_norm in ((5.0, 1.0), (0.01, 1.0)):  # clipped, and left alone
        ours, theirs = _params_with_grads(scale), _params_with_grads(scale)
        total_ours = clip_gradients(ours, max_norm=max_norm)
        total_theirs = torch.nn.utils.clip_grad_norm_(theirs, max_norm)
        torch.testing.assert_close(total_ours, total_theirs)
        for a, b in zip(ours[:3], theirs[:3], strict=True):
            torch.testing.assert_close(a.grad, b.grad)
        after = torch.sqrt(sum(torch.sum(torch.abs(p.grad) ** 2) for p in ours[:3]))
        if float(total_ours) > max_norm:
            assert abs(float(after) - max_norm) < 1e-4
        else:
            torch.testing.assert_close(after, total_ours)


def test_clip_gradients_without_gradients_returns_zero() -> None:
    assert float(clip_gradients([nn.Parameter(torch.zeros(2))], max_norm=1.0)) == 0.0
