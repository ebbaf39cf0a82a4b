"""Gradient-norm clipping that is fast on complex spectral weights.

`torch.nn.utils.clip_grad_norm_` takes the norm of each gradient as it is; on the CPU the norm of a
complex tensor is much slower than the norm of its real view (in a profile of one FNO training step the
four complex spectral weight gradients took longer to clip than the optimiser took to step). The norm of
a complex tensor equals the norm of its `view_as_real`, so this hands torch's own `get_total_norm` and
`clip_grads_with_norm_` the real views: same clipping, same result to float32 rounding.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


def clip_gradients(parameters: Iterable[torch.nn.Parameter], *, max_norm: float) -> torch.Tensor:
    """Scale the gradients of `parameters` in place to a total 2-norm of at most `max_norm`.

    Returns the total norm before clipping (as `clip_grad_norm_` does).
    """
    params = [p for p in parameters if p.grad is not None]
    if not params:
        return torch.tensor(0.0)
    grads = [torch.view_as_real(p.grad) if p.grad.is_complex() else p.grad for p in params]
    total = torch.nn.utils.get_total_norm(grads, norm_type=2.0, foreach=True)
    torch.nn.utils.clip_grads_with_norm_(params, max_norm, total, foreach=True)
    return total
