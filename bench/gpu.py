"""GPU training throughput of the NB201 supernet: the eager supernet, the static-graph supernet
(``supernet.static``: the arch is data) eager and captured as one CUDA graph (forward, backward
and SGD step), optionally ``torch.compile``d, and the extracted standalone net, side by side on
the same device-resident batches; achieved TFLOP/s (``torch.utils.flop_counter``) against the
card's peak computed from the device's SM count and clock.

    python -m bench.gpu [--batches 256 1024] [--channels 16] [--cells 5] [--size 32] [--compile]
    python -m bench.gpu --smoke        # on CPU: every path runs (no CUDA graph), tiny sizes

Each training step trains the next arch of a fixed random list (the supernet rows change path
at every step, as training does; the standalone row trains the first arch's net). Before timing,
it checks that the static path gives the eager path's and the extracted net's outputs.
"""

from __future__ import annotations

import argparse
import copy
import random
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from supernet.models import Macro, Supernet
from supernet.spaces import build_space
from supernet.static import StaticSupernet, encode

#: FLOP per clock per SM, dense (NVIDIA architecture whitepapers): (fp32 CUDA cores, TF32 tensor
#: cores, bf16 tensor cores). cuDNN runs fp32 convolutions on TF32 tensor cores by default.
FLOP_PER_CLOCK_SM = {(8, 0): (128, 1024, 2048), (9, 0): (256, 2048, 4096)}


def peak_tflops(device: torch.device) -> str:
    """The card's peak in TFLOP/s from its SM count and maximum clock, or why it is unknown."""
    if device.type != "cuda":
        return "n/a (no CUDA device)"
    props = torch.cuda.get_device_properties(device)
    per_sm = FLOP_PER_CLOCK_SM.get((props.major, props.minor))
    if per_sm is None:
        return f"unknown for compute capability {props.major}.{props.minor}"
    clock = props.clock_rate * 1e3  # kHz -> Hz
    fp32, tf32, bf16 = (props.multi_processor_count * clock * f / 1e12 for f in per_sm)
    return (
        f"{props.multi_processor_count} SMs x {clock / 1e9:.2f} GHz: fp32 {fp32:.0f}, "
        f"TF32 {tf32:.0f}, bf16 {bf16:.0f} TFLOP/s dense"
    )


def seconds_per_call(fn: Callable[[], object], steps: int, device: torch.device) -> float:
    for _ in range(3):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(steps):
            fn()
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) / 1000 / steps
    tic = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - tic) / steps


def sgd(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)


def eager_step(model: nn.Module, x, y, args_of: Callable[[int], tuple]) -> Callable[[], None]:
    """A training step of ``model(x, *args_of(k))`` on the k-th call."""
    opt, k = sgd(model), [0]

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x, *args_of(k[0])), y).backward()
        opt.step()
        k[0] += 1

    return step


def graph_step(static: StaticSupernet, x, y, codes: torch.Tensor) -> Callable[[], None]:
    """The whole static training step captured once as a CUDA graph; each replay first copies
    the next arch's codes into the graph's input (a device-to-device copy)."""
    opt, k = sgd(static), [0]
    current = codes[0].clone()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up on a side stream, as the CUDA graphs docs ask
        for _ in range(3):
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(static(x, current), y).backward()
            opt.step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        nn.functional.cross_entropy(static(x, current), y).backward()
        opt.step()

    def step() -> None:
        current.copy_(codes[k[0] % len(codes)])
        graph.replay()
        k[0] += 1

    return step


def step_flops(model: nn.Module, x, y, *arch) -> int:
    """FLOPs of one forward + backward (``torch.utils.flop_counter``)."""
    with FlopCounterMode(display=False) as counter:
        nn.functional.cross_entropy(model(x, *arch), y).backward()
    model.zero_grad(set_to_none=True)
    return int(counter.get_total_flops())


def check_equal(net: Supernet, static: StaticSupernet, archs, x) -> float:
    """Max |difference| between the static path, the eager path and the extracted net."""
    worst = 0.0
    net.eval(), static.eval()
    with torch.no_grad():
        for arch in archs:
            eager = net(x, arch)
            worst = max(worst, (static(x, encode(arch, x.device)) - eager).abs().max().item())
            worst = max(worst, (net.extract(arch).eval()(x) - eager).abs().max().item())
    net.train(), static.train()
    return worst


def rows_for(args, batch: int, device: torch.device) -> list[tuple[str, float, int, int]]:
    """(what, s/step, executed FLOPs/step, useful FLOPs/step) for one batch size."""
    space = build_space("nb201")
    macro = Macro(channels=args.channels, cells_per_stage=args.cells, in_channels=3)
    torch.manual_seed(0)
    rng = random.Random(0)
    archs = [space.sample(rng) for _ in range(args.archs)]
    codes = torch.stack([encode(a) for a in archs]).to(device)
    x = torch.randn(batch, 3, args.size, args.size, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    net = Supernet(space, macro).to(device).train()
    static = StaticSupernet(copy.deepcopy(net)).to(device).train()
    diff = check_equal(net, static, archs[:4], x[:8])
    print(f"batch {batch}: max |static - eager|, |extracted - eager| = {diff:.2e}")
    sub = net.extract(archs[0]).to(device).train()
    useful = step_flops(sub, x, y)
    executed = step_flops(static, x, y, codes[0])
    print(
        f"FLOPs per step (fwd + bwd): static supernet {executed / 1e9:.3f} G (every candidate), "
        f"standalone {useful / 1e9:.3f} G (arch 0; 'useful' for every row)"
    )
    arch_of, code_of = (lambda k: (archs[k % len(archs)],)), (lambda k: (codes[k % len(codes)],))
    timed: list[tuple[str, Callable[[], Callable[[], None]], int]] = [
        ("eager supernet", lambda: eager_step(net, x, y, arch_of), useful),
        ("static supernet, eager", lambda: eager_step(static, x, y, code_of), executed),
        ("standalone net, eager", lambda: eager_step(sub, x, y, lambda k: ()), useful),
    ]
    if device.type == "cuda":
        timed.append(
            ("static supernet, CUDA graph", lambda: graph_step(static, x, y, codes), executed)
        )
        timed.append(("standalone net, CUDA graph", lambda: standalone_graph(sub, x, y), useful))
    if args.compile:
        mode = "max-autotune" if device.type == "cuda" else "default"
        compiled = torch.compile(static, mode=mode, fullgraph=True, dynamic=False)
        timed.append(
            (
                "static supernet, torch.compile",
                lambda: eager_step(compiled, x, y, code_of),
                executed,
            )
        )
    rows = []
    for what, make, flops in timed:
        try:  # a failing row (a capture, a compile) is reported and the others still run
            rows.append((what, seconds_per_call(make(), args.steps, device), flops, useful))
        except Exception as err:
            print(f"{what}: failed: {type(err).__name__}: {str(err).strip().splitlines()[0]}")
    return rows


def standalone_graph(sub: nn.Module, x, y) -> Callable[[], None]:
    """The standalone net's training step as a CUDA graph (no arch input)."""

    class NoArch(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = sub

        def forward(self, x, codes):
            return self.net(x)

    return graph_step(NoArch(), x, y, torch.zeros(1, 1, device=x.device))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--cells", type=int, default=5, help="cells per stage (NB201 uses 5)")
    parser.add_argument("--batches", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--archs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--compile", action="store_true", help="also a torch.compile row")
    parser.add_argument("--smoke", action="store_true", help="CPU, tiny sizes: it runs")
    args = parser.parse_args(argv)
    if args.smoke:
        args.channels, args.cells, args.batches, args.size, args.steps = 4, 1, [8], 8, 2
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type != "cuda" and not args.smoke:
        print("no CUDA device: bench/gpu.py measures the GPU (--smoke runs it on CPU)")
        return 1
    torch.backends.cudnn.benchmark = True
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU (smoke)"
    print(
        f"device {name}, torch {torch.__version__}; NB201 C={args.channels} N={args.cells}, "
        f"{args.size}x{args.size}x3, fp32, {args.archs} archs, {args.steps} timed steps"
    )
    print(f"peak: {peak_tflops(device)}")
    for batch in args.batches:
        try:
            rows = rows_for(args, batch, device)
        except torch.OutOfMemoryError:
            print(f"batch {batch}: out of GPU memory")
            torch.cuda.empty_cache()
            continue
        alone = next(s for what, s, _, _ in rows if what.startswith("standalone net, eager"))
        print(
            f"{'training step':<32} {'images/s':>10} {'time/standalone':>16} "
            f"{'TFLOP/s executed':>17} {'TFLOP/s useful':>15}"
        )
        for what, s, executed, useful in rows:
            print(
                f"{what:<32} {batch / s:>10.0f} {s / alone:>15.2f}x "
                f"{executed / s / 1e12:>17.3f} {useful / s / 1e12:>15.3f}"
            )
    if device.type == "cuda":
        print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
