"""Throughput: supernet(x, arch) vs the extracted standalone net on the same batches.

The evaluator scores the *extracted* path (``strategy.extract``), which must give the same output
as the supernet path; this prints how much faster it is, and the training-step rate, side by side.

    python -m bench.throughput [--archs 20] [--batch 256] [--channels 16] [--threads 1]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import torch

from supernet.models import Macro, Supernet
from supernet.spaces import build_space


def _time(fn, repeats: int) -> float:
    fn()  # warm-up
    tic = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - tic) / repeats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=20)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--size", type=int, default=14, help="input height = width")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    space = build_space("nb201")
    net = Supernet(space, Macro(channels=args.channels)).eval()
    x = torch.randn(args.batch, 1, args.size, args.size)
    rng = random.Random(0)
    archs = [space.sample(rng) for _ in range(args.archs)]
    sup, ext, train = [], [], []
    with torch.no_grad():
        for arch in archs:
            sub = net.extract(arch).eval()
            assert torch.equal(net(x, arch), sub(x)), f"extract differs from supernet for {arch}"
            sup.append(_time(lambda a=arch: net(x, a), args.repeats))
            ext.append(_time(lambda s=sub: s(x), args.repeats))
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    y = torch.randint(0, 10, (args.batch,))
    for arch in archs[:5]:

        def step(a=arch):
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(net(x, a), y).backward()
            opt.step()

        train.append(_time(step, args.repeats))
    ips = lambda t: args.batch / statistics.median(t)  # noqa: E731
    print(
        f"NB201 C={args.channels}, {args.size}x{args.size}, batch {args.batch}, "
        f"{args.threads} thread(s), {len(archs)} random archs (median over archs)"
    )
    print(f"{'what':36s} {'images/s':>10s} {'ratio':>7s}")
    print(f"{'supernet(x, arch), eval':36s} {ips(sup):10.0f} {1.0:7.2f}")
    print(
        f"{'extract(arch)(x), eval (same output)':36s} {ips(ext):10.0f} {ips(ext) / ips(sup):7.2f}"
    )
    print(
        f"{'supernet train step (fwd+bwd+SGD)':36s} {ips(train):10.0f} {ips(train) / ips(sup):7.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
