"""Latency lookup table (LUT): each op or block choice of a space timed once on one device at
the run's input size, then any arch's latency predicted as the sum of the parts it runs
(Once-for-All's latency tables, Cai et al. ICLR 2020). A search can rank and constrain by it on a
machine other than the one that measured it (``evaluator.latency_table=lut.json``).

The parts are keyed by where they sit: ``stem``, ``head``, ``block<i>`` (a fixed block, e.g. an
NB201 reduction), ``block<i>/<op>`` (an NB201 cell's edge op; one per edge that runs), with
``block<i>/add`` for each term of a node's sum (``sum()`` starts from 0, so a node of k terms adds
k times), ``block<i>/zeros`` for a node no edge feeds and ``block<i>/cell`` for the cell's own
Python work (an empty cell's time less its three zero nodes),
and ``block<i>/k<kernel>e<expand>`` (an mbv3 block that runs). The table is data: a JSON object of
plain values, checked on load against the supernet it is used with; nothing in it is executed.
"""

from __future__ import annotations

import json
import math
import random
import statistics
from collections.abc import Callable, Mapping
from pathlib import Path

import torch

from search.costs import time_ms
from supernet.errors import SharenasError
from supernet.fileio import write_atomic
from supernet.models.macro import MacroNet
from supernet.ops.cells import FixedCell, SuperCell
from supernet.ops.mbconv import ElasticMBConv
from supernet.spaces.mbv3 import MAX_DEPTH, block_keys, depth_key
from supernet.spaces.nb201 import NB201_OPS, NUM_NODES, edge_name

FORMAT = 2  # 2: measured with the channels-last CPU kernels (supernet/ops/fast.py)


def part_keys(supernet: MacroNet, arch: Mapping[str, str]) -> list[str]:
    """The LUT keys of the parts ``arch`` runs, once per run (a key may repeat)."""
    keys = ["stem"]
    for i, block in enumerate(supernet.blocks):
        if isinstance(block, SuperCell):
            keys += _cell_keys(i, arch)
        elif isinstance(block, ElasticMBConv):
            stage, b = divmod(i, MAX_DEPTH)
            if b < int(arch[depth_key(stage + 1)]):
                kernel, expand = block_keys(stage + 1, b + 1)
                keys.append(f"block{i}/k{arch[kernel]}e{arch[expand]}")
        else:
            keys.append(f"block{i}")
    return [*keys, "head"]


def _cell_keys(i: int, arch: Mapping[str, str]) -> list[str]:
    """An NB201 cell as ``FixedCell`` runs it: one op per kept edge, the sums, zero nodes."""
    keys = []
    for j in range(1, NUM_NODES):
        ops = [arch[edge_name(j, s)] for s in range(j) if arch[edge_name(j, s)] != "none"]
        keys += [f"block{i}/{op}" for op in ops]
        keys += [f"block{i}/add"] * len(ops) if ops else [f"block{i}/zeros"]
    keys.append(f"block{i}/cell")
    return keys


@torch.no_grad()
def measure_parts(
    supernet: MacroNet,
    input_shape: tuple[int, ...],
    batch: int = 1,
    device: str = "cpu",
    threads: int = 1,
    min_run_time: float = 0.2,
    statistic: str = "median",
    rounds: int = 1,
) -> dict[str, float]:
    """Time every part any arch of the supernet's space can run, at its place in the network.
    With ``rounds`` > 1 every part is timed once per sweep over all parts, and its times are
    combined by ``statistic`` (a busy moment then spoils one round of a part, not all of them)."""
    sweeps = [
        _sweep(supernet, input_shape, batch, device, threads, min_run_time, statistic)
        for _ in range(rounds)
    ]
    return {k: combine([s[k] for s in sweeps], statistic) for k in sweeps[0]}


def combine(times: list[float], statistic: str) -> float:
    """Several rounds' times of one thing, combined by ``statistic`` ("median" or "min")."""
    return min(times) if statistic == "min" else statistics.median(times)


def _sweep(
    supernet: MacroNet,
    input_shape: tuple[int, ...],
    batch: int,
    device: str,
    threads: int,
    min_run_time: float,
    statistic: str,
) -> dict[str, float]:
    net = supernet.to(device).eval()
    x = torch.zeros((batch, *input_shape), device=device)
    ms: dict[str, float] = {}

    def timed(key: str, module: Callable, inp: torch.Tensor) -> torch.Tensor:
        ms[key] = time_ms(lambda: module(inp), threads, min_run_time, statistic)
        return module(inp)

    x = timed("stem", net.stem, x)
    for i, block in enumerate(net.blocks):
        if isinstance(block, SuperCell):
            edge = block.edges[edge_name(1, 0)]
            for op in NB201_OPS[1:]:
                timed(f"block{i}/{op}", edge.active(op), x)
            y = x.clone()
            ms[f"block{i}/add"] = time_ms(lambda a=x, b=y: a + b, threads, min_run_time, statistic)
            ms[f"block{i}/zeros"] = time_ms(
                lambda a=x: torch.zeros_like(a), threads, min_run_time, statistic
            )
            empty = time_ms(lambda a=x: FixedCell({})(a), threads, min_run_time, statistic)
            ms[f"block{i}/cell"] = max(empty - 3 * ms[f"block{i}/zeros"], 0.0)
        elif isinstance(block, ElasticMBConv):
            out = x
            for k, e in _kernel_expands(block):
                out = timed(f"block{i}/k{k}e{e}", block.extract(k, e).to(device).eval(), x)
            x = out
        else:
            x = timed(f"block{i}", block, x)
    timed("head", net.head, x)
    return ms


def _kernel_expands(block: ElasticMBConv) -> list[tuple[int, int]]:
    from supernet.spaces.mbv3 import EXPANDS, KERNELS

    return [(int(k), int(e)) for k in KERNELS for e in EXPANDS]


class LatencyTable:
    """Measured part latencies of one supernet layout on one device; ``predict(arch)`` sums the
    parts ``arch`` runs. Built by ``measure`` or read (and checked) by ``load``."""

    def __init__(self, parts: Mapping[str, float], meta: Mapping[str, object]) -> None:
        self.parts = dict(parts)
        self.meta = dict(meta)

    @classmethod
    def measure(
        cls,
        supernet: MacroNet,
        input_shape: tuple[int, ...],
        calibrate: int = 0,
        calibration_seed: int = 0,
        **kw: object,
    ) -> LatencyTable:
        """Time the parts; with ``calibrate`` > 0 also time that many whole networks (drawn with
        ``random.Random(calibration_seed)``) and store ``scale``, the median of measured / summed
        (what the parts alone miss: call overhead, weights leaving the cache between blocks)."""
        parts = measure_parts(supernet, input_shape, **kw)
        meta = {
            "format": FORMAT,
            "space": supernet.space.name,
            "layout": layout(supernet),
            "input_shape": [int(d) for d in input_shape],
            "batch": int(kw.get("batch", 1)),
            "device": device_name(str(kw.get("device", "cpu"))),
            "threads": int(kw.get("threads", 1)),
            "rounds": int(kw.get("rounds", 1)),
            "timer": "torch.utils.benchmark.Timer.blocked_autorange, "
            + str(kw.get("statistic", "median")),
            "scale": 1.0,
            "calibration_archs": int(calibrate),
        }
        table = cls(parts, meta)
        if calibrate > 0:
            rng = random.Random(calibration_seed)
            archs = list(dict.fromkeys(supernet.space.sample(rng) for _ in range(20 * calibrate)))
            whole = measure_networks(supernet, archs[:calibrate], input_shape, **kw)
            ratios = [w / table.predict(supernet, a) for a, w in zip(archs, whole)]
            table.meta["scale"] = statistics.median(ratios)
        return table

    def predict(self, supernet: MacroNet, arch: Mapping[str, str]) -> float:
        """Predicted latency (ms) of ``arch``: the sum of its parts' measured times, times the
        table's ``scale`` (1 unless calibrated on whole networks)."""
        return float(self.meta["scale"]) * sum(self.parts[k] for k in part_keys(supernet, arch))

    def save(self, path: str | Path) -> Path:
        data = {**self.meta, "parts_ms": dict(sorted(self.parts.items()))}
        text = json.dumps(data, indent=1, allow_nan=False) + "\n"
        return write_atomic(path, lambda f: f.write(text.encode()))

    @classmethod
    def load(
        cls, path: str | Path, supernet: MacroNet, input_shape: tuple[int, ...]
    ) -> LatencyTable:
        """Read a table and check it fits ``supernet`` at ``input_shape``: one line naming what
        does not (a table measured for another layout would predict nonsense)."""
        where = f"evaluator.latency_table={path}"
        try:
            data = json.loads(Path(path).read_text(), parse_constant=_reject_constant)
        except (OSError, ValueError) as err:
            raise SharenasError(f"{where}: cannot read a JSON table ({err})") from None
        version = data.get("format") if isinstance(data, dict) else None
        if type(version) is not int or version != FORMAT:
            older = type(version) is int and version == 1
            why = (
                ": it was measured before the channels-last CPU kernels and predicts their "
                "slower times; measure it again with sharenas-latency"
                if older
                else ""
            )
            raise SharenasError(f"{where}: not a latency table of format {FORMAT}{why}")
        expected = {
            "space": supernet.space.name,
            "layout": layout(supernet),
            "input_shape": [int(d) for d in input_shape],
        }
        for key, want in expected.items():
            if data.get(key) != want:
                raise SharenasError(
                    f"{where}: measured for {key} {data.get(key)!r}, this run has {want!r}; "
                    "measure one for this run with sharenas-latency"
                )
        parts = data.get("parts_ms")
        if not isinstance(parts, dict):
            raise SharenasError(f"{where}: 'parts_ms' must map part names to milliseconds")
        for name, value in parts.items():
            if not _time_value(value):
                raise SharenasError(f"{where}: part {name!r} has {value!r}; need a number >= 0 ms")
        needed = set(measure_keys(supernet))
        if missing := sorted(needed - set(parts)):
            raise SharenasError(
                f"{where}: no time for part {missing[0]!r} ({len(missing)} missing)"
            )
        scale = data.get("scale")
        if not _time_value(scale) or not scale > 0:
            raise SharenasError(f"{where}: 'scale' is {scale!r}; need a number > 0")
        meta = {k: v for k, v in data.items() if k != "parts_ms"}
        return cls({k: float(parts[k]) for k in needed}, meta)


def _time_value(value: object) -> bool:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return ok and math.isfinite(value) and value >= 0


@torch.no_grad()
def measure_networks(
    supernet: MacroNet,
    archs: list,
    input_shape: tuple[int, ...],
    batch: int = 1,
    device: str = "cpu",
    threads: int = 1,
    min_run_time: float = 0.2,
    statistic: str = "median",
    rounds: int = 1,
) -> list[float]:
    """The whole extracted network of each arch timed ``rounds`` times (one sweep over all archs
    per round, as the parts are) and combined by ``statistic``."""
    x = torch.zeros((batch, *input_shape), device=device)
    nets = [supernet.extract(a).to(device).eval() for a in archs]
    times: list[list[float]] = [[] for _ in nets]
    for _ in range(rounds):
        for net, seen in zip(nets, times, strict=True):
            seen.append(time_ms(lambda n=net: n(x), threads, min_run_time, statistic))
    return [combine(seen, statistic) for seen in times]


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a time")


def measure_keys(supernet: MacroNet) -> list[str]:
    """Every part key of the supernet (what ``measure_parts`` times)."""
    keys = ["stem", "head"]
    for i, block in enumerate(supernet.blocks):
        if isinstance(block, SuperCell):
            keys += [f"block{i}/{op}" for op in (*NB201_OPS[1:], "add", "zeros", "cell")]
        elif isinstance(block, ElasticMBConv):
            keys += [f"block{i}/k{k}e{e}" for k, e in _kernel_expands(block)]
        else:
            keys.append(f"block{i}")
    return keys


def layout(supernet: MacroNet) -> dict[str, int]:
    """What fixes the shapes of the parts besides the input: the macro sizes."""
    m = supernet.macro
    return {
        "channels": m.channels,
        "cells_per_stage": m.cells_per_stage,
        "num_classes": m.num_classes,
    }


def device_name(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    import platform

    return f"{device} ({platform.processor() or platform.machine()}, torch {torch.__version__})"


__all__ = ["LatencyTable", "measure_parts", "part_keys", "time_ms"]
