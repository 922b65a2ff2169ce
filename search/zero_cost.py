"""Zero-cost proxies computed with the weights a path inherits from the trained supernet.

Each proxy scores a standalone net (BN recalibrated, ``search.evaluate.Evaluator.calibrated``) from
one fixed batch of training images, or from none, with one backward pass and no weight update;
higher is better. They come from the pruning-at-initialisation literature, where they score
randomly initialised nets (Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021);
here the weights are the supernet's, as the estimators issue asks:

- ``snip``: sum over weights of ``|w * dL/dw|`` (Lee et al., ICLR 2019), loss on the batch;
- ``grad_norm``: the L2 norm of ``dL/dw`` over every weight;
- ``synflow``: sum of ``|w * dR/dw|`` where ``R`` is the sum of the outputs of the net with every
  weight replaced by its absolute value, BN removed, on an all-ones input, in float64 (Tanaka et
  al., NeurIPS 2020): data-free.

The net is never changed: the gradients are taken with ``torch.autograd.grad`` (no ``.grad`` is
left behind), and ``synflow`` works on a twin (``synflow_twin``: a copy, or, in the evaluator,
one assembled from a memo of prepared part copies, so that no weight is copied per arch). BN layers
run in eval mode, with the recalibrated statistics, so a proxy is a pure function of the path's
weights and the batch.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

ZERO_COST: dict[str, str] = {
    "snip": "sum |w * dL/dw| on one training batch (Lee et al. 2019)",
    "grad_norm": "L2 norm of dL/dw on one training batch",
    "synflow": "sum |w * dR/dw|, R = output sum of the |w| net, no BN, on ones (Tanaka 2020)",
}


def _weights(net: nn.Module) -> list[nn.Parameter]:
    """Every trainable tensor of ``net`` (convolution, linear and BN affine weights and biases)."""
    return [p for p in net.parameters() if p.requires_grad]


def _loss_grads(
    net: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]
) -> tuple[list[torch.Tensor], tuple[torch.Tensor, ...]]:
    """The weights of ``net`` (detached) and the gradients of the batch's loss with respect to
    them."""
    weights = _weights(net)
    x, y = batch
    with torch.enable_grad(), torch.inference_mode(False):
        loss = nn.functional.cross_entropy(net(x.clone()), y.clone())
        grads = torch.autograd.grad(loss, weights, allow_unused=True)
    return [w.detach() for w in weights], grads


def snip(net: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> float:
    """``sum |w * dL/dw|`` over the weights of ``net`` on ``batch``."""
    weights, grads = _loss_grads(net, batch)
    pairs = zip(weights, grads, strict=True)
    return float(sum((w * g).abs().sum() for w, g in pairs if g is not None))


def grad_norm(net: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> float:
    """The L2 norm of ``dL/dw`` over the weights of ``net`` on ``batch``."""
    _, grads = _loss_grads(net, batch)
    return float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads if g is not None)))


def synflow_twin(module: nn.Module) -> nn.Module:
    """``module`` made synflow's, in place: float64, every weight ``|w|``, every BatchNorm an
    identity (returned; a BatchNorm itself becomes an ``nn.Identity``). Idempotent. Tensors made
    under ``torch.inference_mode`` cannot be differentiated: prepare copies outside it."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return nn.Identity()
    module.double()
    for name, child in list(module.named_modules()):
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            parent, _, leaf = name.rpartition(".")
            setattr(module.get_submodule(parent), leaf, nn.Identity())
    with torch.inference_mode(False), torch.no_grad():
        for p in module.parameters():
            p.abs_()
    return module


def synflow_score(twin: nn.Module, image_shape: tuple[int, ...]) -> float:
    """``sum |w * dR/dw|`` of a ``synflow_twin`` on one all-ones image of ``image_shape``."""
    device = next((p.device for p in twin.parameters()), torch.device("cpu"))
    with torch.inference_mode(False):
        ones = torch.ones((1, *image_shape), dtype=torch.float64, device=device)
        weights = _weights(twin)
        with torch.enable_grad():
            grads = torch.autograd.grad(twin(ones).sum(), weights, allow_unused=True)
        pairs = zip(weights, grads, strict=True)
        return float(sum((w.detach() * g).abs().sum() for w, g in pairs if g is not None))


def synflow(net: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> float:
    """``sum |w * dR/dw|`` of the ``|w|`` net without BN on ones shaped like ``batch``'s images
    (one image: the score does not depend on the data). Scores a twin; ``net`` is untouched."""
    with torch.inference_mode(False):
        twin = synflow_twin(copy.deepcopy(net)).eval()
    return synflow_score(twin, tuple(batch[0].shape[1:]))


PROXIES: dict[str, Callable[[nn.Module, tuple[torch.Tensor, torch.Tensor]], float]] = {
    "snip": snip,
    "grad_norm": grad_norm,
    "synflow": synflow,
}


def proxy_batch(
    train: torch.utils.data.TensorDataset, size: int = 64, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed batch every proxy of one evaluator reads: ``size`` training images drawn by
    ``seed``."""
    x, y = train.tensors[0], train.tensors[1]
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(y), generator=g)[: min(size, len(y))]
    return x[idx], y[idx]
