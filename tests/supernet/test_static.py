"""The static-graph NB201 path equals the eager path and the extracted net (outputs, gradients of
the path's weights, BN statistics), on 50 random archs."""

from __future__ import annotations

import copy
import random

import pytest
import torch
from torch import nn

from supernet.models import Macro, Supernet
from supernet.spaces import build_space
from supernet.static import StaticSupernet, encode


def step(model, x, y, *arch) -> torch.Tensor:
    model.zero_grad(set_to_none=True)
    out = model(x, *arch)
    nn.functional.cross_entropy(out, y).backward()
    return out.detach()


def grad(p: nn.Parameter) -> torch.Tensor:
    return torch.zeros_like(p) if p.grad is None else p.grad


def supernet_name(name: str, arch) -> str:
    """The supernet parameter an extracted net's parameter copies."""
    parts = name.split(".")
    if parts[0] == "blocks" and parts[2] == "ops":  # blocks.b.ops.edge.rest
        edge = parts[3]
        return ".".join(["blocks", parts[1], "edges", edge, "ops", arch[edge], *parts[4:]])
    return name


def test_static_equals_eager_and_extracted_on_50_archs():
    space = build_space("nb201")
    torch.manual_seed(0)
    eager = Supernet(space, Macro(channels=4, cells_per_stage=2)).train()
    static = StaticSupernet(copy.deepcopy(eager)).train()
    x, y = torch.randn(6, 1, 8, 8), torch.randint(0, 10, (6,))
    rng = random.Random(0)
    archs = [space.largest(), space.make({d: "none" for d in space.choices()})]
    archs += [space.sample(rng) for _ in range(48)]
    for arch in archs:
        sub = eager.extract(arch).train()  # before the step: the same weights and statistics
        out_x = step(sub, x, y)
        out_e = step(eager, x, y, arch)
        out_s = step(static, x, y, encode(arch))
        torch.testing.assert_close(out_s, out_e, rtol=0, atol=0)
        torch.testing.assert_close(out_x, out_e, rtol=1e-6, atol=1e-6)
        ours = dict(static.net.named_parameters())
        for name, p in eager.named_parameters():
            torch.testing.assert_close(grad(ours[name]), grad(p), rtol=0, atol=0, msg=name)
        theirs = dict(eager.named_parameters())
        for name, p in sub.named_parameters():
            ref = grad(theirs[supernet_name(name, arch)])
            torch.testing.assert_close(grad(p), ref, rtol=1e-5, atol=1e-6, msg=name)
        for (name, b_e), b_s in zip(eager.named_buffers(), static.net.buffers(), strict=True):
            torch.testing.assert_close(b_s, b_e, rtol=0, atol=0, msg=name)


def test_one_graph_for_every_arch():
    """The arch is data: tracing the static path never branches on it."""
    space = build_space("nb201")
    torch.manual_seed(0)
    static = StaticSupernet(Supernet(space, Macro(channels=4))).eval()
    x = torch.randn(2, 1, 8, 8)
    rng = random.Random(1)
    a, b = space.largest(), space.sample(rng)
    traced = torch.fx.symbolic_trace(static)  # would fail on control flow over the codes
    with torch.no_grad():
        torch.testing.assert_close(traced(x, encode(a)), static.net(x, a), rtol=0, atol=0)
    with torch.no_grad():
        torch.testing.assert_close(traced(x, encode(b)), static(x, encode(b)), rtol=0, atol=0)
        torch.testing.assert_close(traced(x, encode(b)), static.net(x, b), rtol=0, atol=0)


@pytest.mark.slow  # compiling takes about 20 s
def test_compiled_training_forward_is_one_graph_for_every_arch():
    """torch.compile captures the training forward (BN statistics kept per path included) once,
    in one graph, and reuses it for other archs without recompiling."""
    import torch._dynamo

    space = build_space("nb201")
    torch.manual_seed(0)
    static = StaticSupernet(Supernet(space, Macro(channels=4))).train()
    reference = copy.deepcopy(static.net)
    compiled = torch.compile(static, backend="eager", fullgraph=True, dynamic=False)
    x, y = torch.randn(4, 1, 8, 8), torch.randint(0, 10, (4,))
    rng = random.Random(2)
    with torch._dynamo.config.patch(error_on_recompile=True):
        for arch in [space.sample(rng) for _ in range(3)]:
            out = step(compiled, x, y, encode(arch))
            torch.testing.assert_close(out, step(reference, x, y, arch), rtol=0, atol=0)
    torch._dynamo.reset()
