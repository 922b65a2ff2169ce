"""GPU throughput: training steps and evaluation of the supernet on CUDA, fp32 vs bf16 autocast vs
bf16 + channels_last, and the supernet path vs its extracted standalone net, on the same batches.

Needs a CUDA device (it exits with a message otherwise). Every figure is measured in this run:

    python -m bench.gpu [--channels 16] [--cells 5] [--batch 256] [--size 32] [--archs 8]
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable
from contextlib import nullcontext

import torch
from torch import nn

from supernet.arch import Arch
from supernet.models import Macro, Supernet
from supernet.spaces import build_space
from supernet.spaces.base import Space

MODES = {  # name -> (autocast bf16, channels_last)
    "fp32": (False, False),
    "bf16": (True, False),
    "bf16+channels_last": (True, True),
}


def _cuda_time(fn: Callable[[], object], steps: int) -> float:
    """Seconds per call of ``fn``, timed with CUDA events after 3 warm-up calls."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(steps):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / 1000 / steps


def measure(
    space: Space,
    macro: Macro,
    archs: list[Arch],
    x: torch.Tensor,
    y: torch.Tensor,
    amp: bool,
    channels_last: bool,
    steps: int,
) -> tuple[float, float, float, float]:
    """(train s/step, supernet eval s/batch, extracted eval s/batch, max |difference|), mean over
    ``archs``, for one precision / memory-format mode."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = Supernet(space, macro).to(x.device).to(memory_format=fmt)
    xb = x.to(memory_format=fmt)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, nesterov=True)

    def run(model, *arch) -> torch.Tensor:
        with torch.autocast("cuda", dtype=torch.bfloat16) if amp else nullcontext():
            return model(xb, *arch)

    def step(arch) -> None:
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(run(net, arch), y).backward()
        opt.step()

    train_s = sum(_cuda_time(lambda a=a: step(a), steps) for a in archs) / len(archs)
    net.eval()
    sup_s, ext_s, max_diff = 0.0, 0.0, 0.0
    with torch.no_grad():
        for a in archs:
            sub = net.extract(a).eval().to(memory_format=fmt)
            max_diff = max(max_diff, (run(net, a) - run(sub)).abs().max().item())
            sup_s += _cuda_time(lambda a=a: run(net, a), steps)
            ext_s += _cuda_time(lambda s=sub: run(s), steps)
    return train_s, sup_s / len(archs), ext_s / len(archs), max_diff


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--cells", type=int, default=5, help="cells per stage (NB201 uses 5)")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--archs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA device: bench/gpu.py measures GPU throughput only")
        return 1
    dev = torch.device("cuda")
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = True
    space = build_space("nb201")
    macro = Macro(channels=args.channels, cells_per_stage=args.cells, in_channels=3)
    rng = random.Random(0)
    archs = [space.sample(rng) for _ in range(args.archs)] + [space.largest()]
    x = torch.randn(args.batch, 3, args.size, args.size, device=dev)
    y = torch.randint(0, 10, (args.batch,), device=dev)
    print(
        f"device {torch.cuda.get_device_name()}, torch {torch.__version__}; "
        f"NB201 C={args.channels} N={args.cells}, batch {args.batch}, {args.size}x{args.size}x3, "
        f"{len(archs)} archs (incl. the largest), {args.steps} timed steps each"
    )
    print(
        f"{'mode':<20} {'train img/s':>12} {'vs fp32':>8} {'eval supernet img/s':>20} "
        f"{'eval extracted':>15} {'extracted speed-up':>19} {'max |diff|':>11}"
    )
    base = None
    for mode, (amp, cl) in MODES.items():
        train_s, sup_s, ext_s, diff = measure(space, macro, archs, x, y, amp, cl, args.steps)
        base = base or train_s
        print(
            f"{mode:<20} {args.batch / train_s:>12.0f} {base / train_s:>7.2f}x "
            f"{args.batch / sup_s:>20.0f} {args.batch / ext_s:>15.0f} {sup_s / ext_s:>18.2f}x "
            f"{diff:>11.2e}"
        )
    print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
