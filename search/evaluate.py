"""Evaluator: score an arch with the weights it inherits from the trained supernet; never trains.

For each arch: extract the standalone path (``strategy.extract``: exactly ``supernet(x, arch)``),
recalibrate its BatchNorm statistics on a fixed cached calibration subset of the training data, then
measure validation accuracy / loss and costs. With ``train_loss`` it also measures the loss on the
whole training split: three times the images of the validation split on mnist5k, and continuous;
with BN recalibrated on the whole split as well (``calib_batches``), it ranked better than val
accuracy in ``bench/fidelity.py`` (``bench/README.md``). It costs one pass over the training split
per arch. Results are memoised by arch string. With ``race`` (``evaluator.race=true``), an arch
that cannot reach the search's top stops after a short first stage (``search.racing``).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from search.costs import flops, latency_ms
from search.estimators import Scorer, get_estimator, resolve_calibration, resolve_estimator
from search.prefix import PrefixCache
from search.racing import EXACT_ESTIMATORS, Race, first_stage
from search.zero_cost import PROXIES, proxy_batch, synflow_score, synflow_twin
from supernet.bn import BatchNormCalibrator
from supernet.builder import Built, initial_strategy
from supernet.errors import SharenasError, check_int
from supernet.models import StandaloneNet, count_params
from supernet.ops.cells import FixedCell
from supernet.ops.fast import every_tap
from supernet.ops.parts import PartMemo
from supernet.scoring import batches_of
from supernet.sharing.base import SharingStrategy


def path_angle(start: nn.Module, trained: nn.Module) -> float:
    """Radians between two nets' weights: every parameter, flattened in order, in float64 (the
    same path extracted from the initial and from the trained supernet)."""
    a = torch.cat([p.detach().double().cpu().flatten() for p in start.parameters()])
    b = torch.cat([p.detach().double().cpu().flatten() for p in trained.parameters()])
    cos = torch.dot(a, b) / (a.norm() * b.norm()).clamp_min(1e-300)
    return float(torch.arccos(cos.clamp(-1.0, 1.0)))


class Evaluator:
    """Scores archs of a trained ``Built`` (space, splits, strategy) without retraining."""

    def __init__(
        self,
        built: Built,
        calib_batches: int | str = 4,
        calib_batch_size: int = 64,
        batch_size: int = 500,
        measure_latency: bool = False,
        latency_table: str | None = None,
        count_flops: bool = True,
        train_loss: bool = False,
        seed: int = 0,
        device: str = "cpu",
        threads: Any = "auto",
        estimator: str = "val_acc",
        initial: SharingStrategy | None = None,
        race: Race | None = None,
        prefix_cache_mb: float = 128.0,
    ) -> None:
        self.built = built
        self.initial = initial  # the supernet before training: records get ``angle``
        self.device = torch.device(device)
        calib_batch_size = check_int("evaluator.calib_batch_size", calib_batch_size, 1)
        estimator = resolve_estimator(estimator, built.space.name)  # auto: the space's best
        calib_batches = resolve_calibration(calib_batches, estimator)  # auto: the estimator's
        self.calibrator = BatchNormCalibrator(
            built.splits.train,
            calibration_batches(calib_batches, calib_batch_size, len(built.splits.train)),
            calib_batch_size,
            seed,
        )
        self.scorer = Scorer(estimator, self._measure, built.space, seed)
        self.seed = seed
        self._proxy_batch: tuple[torch.Tensor, torch.Tensor] | None = None
        _check_initial(estimator, self.scorer.estimator.needs_initial, initial)
        self._initial_parts: dict = {}  # scratch part copies of the initial supernet
        self._train_loss = train_loss or self.scorer.estimator.needs_train_loss
        self._batch_size = check_int("evaluator.batch_size", batch_size, 1)
        self._split_batches()
        self.input_shape = tuple(built.splits.val.tensors[0].shape[1:])
        self.measure_latency = measure_latency
        self.latency_table = self._table(latency_table)  # predicted latency_ms, or None
        self.count_flops = count_flops
        self.memo: dict[str, dict] = {}
        self._parts: dict[int, dict] = {}  # sub-supernet -> its scratch part copies (compute)
        self._twin_parts: dict[int, PartMemo] = {}  # sub-supernet -> its synflow twin parts
        self._part_flops: dict[tuple, tuple[int, tuple[int, ...]]] = {}  # see _flops
        self.threads = threads  # trainer.num_threads, applied by Ray workers (supernet.threads)
        self.race = race
        self._race_batch = self._first_stage_batch(race, estimator)  # may turn racing off
        self.prefix = PrefixCache(prefix_cache_mb)  # shared leading parts run once, exactly
        built.strategy.eval()

    def _split_batches(self) -> None:
        """``val_batches`` (and ``train_batches`` when the training loss is measured): views of
        the splits, rebuilt after unpickling (``__getstate__``)."""
        val, train = self.built.splits.val, self.built.splits.train
        x, y = (t.split(self._batch_size) for t in val.tensors[:2])
        self.val_batches = list(zip(x, y, strict=True))
        self.train_batches = batches_of(train, self._batch_size) if self._train_loss else None

    def __getstate__(self) -> dict:
        """Pickled without the batch views: a view pickles its whole storage, so each batch
        would carry the whole split again (Ray ships the evaluator to its workers)."""
        state = self.__dict__.copy()
        state["val_batches"] = state["train_batches"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._split_batches()

    def _first_stage_batch(
        self, race: Race | None, estimator: str
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The validation images of racing's first stage (``search.racing``), or None."""
        if race is None:
            return None
        race.check_estimator(estimator)
        race.exact = estimator in EXACT_ESTIMATORS
        x, y = self.built.splits.val.tensors[:2]
        if race.images >= len(y):  # known once the data is loaded: after a training, so no error
            print(
                f"warning: evaluator.race_images={race.images} is not below the {len(y)} "
                "validation images, so racing would save nothing: racing is off",
                file=sys.stderr,
            )
            self.race = None
            return None
        return x[: race.images].clone(), y[: race.images].clone()  # views would pickle it all

    def _table(self, path: str | None):
        """The latency lookup table at ``path`` (``search.latency.LatencyTable``), or None."""
        if path is None:
            return None
        if self.measure_latency:
            raise SharenasError(
                "evaluator.measure_latency=true and evaluator.latency_table are both set; "
                "latency_ms is either measured here or predicted from the table: pick one"
            )
        from search.latency import LatencyTable

        supernet = self.built.strategy.supernets[0]
        return LatencyTable.load(path, supernet, self.input_shape)

    @classmethod
    def from_config(
        cls,
        built: Built,
        ev: Mapping,
        seed: int,
        threads: Any = "auto",
        initial: SharingStrategy | None = None,
        limits: Mapping[str, float | None] | None = None,
    ) -> Evaluator:
        """The evaluator a search's ``evaluator`` config group describes; ``limits`` are the
        search's constraints (racing compares an arch with the feasible records only)."""
        race = None
        if ev.get("race", False):
            top_k, z, images = (ev[f"race_{k}"] for k in ("top_k", "z", "images"))
            race = Race(top_k=top_k, z=z, images=images, limits=dict(limits or {}))
        return cls(
            built,
            calib_batches=ev["calib_batches"],
            calib_batch_size=ev["calib_batch_size"],
            batch_size=ev["batch_size"],
            count_flops=ev["count_flops"],
            measure_latency=ev["measure_latency"],
            latency_table=ev.get("latency_table"),
            train_loss=ev["train_loss"],
            seed=seed,
            device=ev["device"],
            threads=threads,
            estimator=ev.get("estimator", "val_acc"),
            initial=initial,
            race=race,
            prefix_cache_mb=ev.get("prefix_cache_mb", 128.0),
        )

    def prepare(self) -> None:
        """Score what every record's score needs before the first one: the fusion's reference
        archs. A search calls it before its backend runs, so that the copies it ships (Ray
        workers) carry the reference and its records instead of each scoring them again."""
        if self.scorer.fusion:
            self.scorer.reference()

    def calibrated(self, arch: Mapping[str, str]) -> nn.Module:
        """The standalone net of ``arch``: inherited weights, recalibrated BN, eval mode."""
        return self.calibrator(self.built.strategy.extract(arch).to(self.device))

    def __call__(self, arch: Mapping[str, str]) -> dict:
        """A record: arch, score (the estimator's value, higher is better), val_acc (%),
        val_loss, train_loss (None unless on or needed), params, flops, latency_ms, supernet
        index, raced (None, or the validation images of a record racing stopped)."""
        key = str(arch)
        if self.race is not None and key not in self.memo and self.race.enter():
            raced = self._race_stage(arch)
            if raced is not None:
                self.memo[key] = raced
                return dict(raced)
        record = self._measure(arch)
        if record.get("score") is None:
            record["score"] = self.scorer(record)
            self.memo[record["arch"]] = record
            if self.race is not None:
                self.race.observe(record)
        return dict(record)

    @torch.no_grad()
    def _measure(self, arch: Mapping[str, str], known: Mapping[str, Any] | None = None) -> dict:
        """The full record of ``arch`` (memoised); ``known``: its ``zero_cost`` and ``angle``
        when racing measured them already, so that nothing is measured twice."""
        key, known = str(arch), known or {}
        if key not in self.memo:
            record = self.compute(arch, known.get("angle"))
            record["zero_cost"] = (
                known["zero_cost"] if "zero_cost" in known else self.zero_cost(arch)
            )
            self.memo[key] = record
        return dict(self.memo[key])

    def _race_stage(self, arch: Mapping[str, str]) -> dict | None:
        """Racing's first stage (``search.racing``): the record of an arch that cannot reach the
        top, scored; None when it may, after which it is scored in full. An exact race decides
        on the score before any pass, and runs the first stage only for a stopped arch's
        figures."""
        with torch.inference_mode():
            route, net = self._scratch(arch)
        zero_cost = self.zero_cost(arch)
        scored = {"params": count_params(net), "zero_cost": zero_cost}  # all a score reads
        if "flops" in self.race.limits and self.count_flops:  # an infeasible arch stops too
            scored["flops"] = self._flops(net)
        if self.race.exact:
            scored["angle"] = self._angle(arch, net)  # the weights: no pass, no calibration
            if not self._race_stops(arch, scored):
                return None
        with torch.inference_mode():
            net = self.calibrator(net, first=1)
            x, y = (t.to(self.device) for t in self._race_batch)
            logits = net(x)
            losses = nn.functional.cross_entropy(logits, y, reduction="none")
            point, hopeful = first_stage(losses, logits.argmax(1) == y, self.race.z)
        if not self.race.exact and not self._race_stops(arch, {**hopeful, **scored}):
            return None
        with torch.inference_mode():
            costs = self._costs(arch, route, net, scored.get("angle"))
        record = {"arch": str(arch), **point, "train_loss": None, **costs, "zero_cost": zero_cost}
        record["raced"] = len(y)
        record["score"] = self.scorer(record)
        return record

    def _race_stops(self, arch: Mapping[str, str], scored: dict) -> bool:
        """Whether the race stops ``arch`` on the figures ``scored`` (hopeful ones, or an exact
        race's own); when it does not, ``arch`` is scored in full here, once."""
        if self.race.infeasible(scored) or self.race.stops(self.scorer(scored)):
            return True
        known = {k: scored[k] for k in ("zero_cost", "angle") if k in scored}
        self._measure(arch, known)  # FLOPs, latency (and the angle): measured once, there
        return False

    def zero_cost(self, arch: Mapping[str, str], name: str | None = None) -> float | None:
        """The zero-cost proxy ``name`` (default: the estimator's ``proxy``; None when it has
        none) of the path's calibrated net on the evaluator's fixed proxy batch
        (``search.zero_cost``); ``synflow`` removes BN, so it reads the extracted path as it is."""
        name = name or self.scorer.estimator.proxy
        if name is None:
            return None
        if self._proxy_batch is None:
            batch = proxy_batch(self.built.splits.train, seed=self.seed)
            self._proxy_batch = (batch[0].to(self.device), batch[1].to(self.device))
        if name == "synflow":  # BN removed: the path's weights alone, from prepared part copies
            return synflow_score(self._twin(arch), tuple(self._proxy_batch[0].shape[1:]))
        return PROXIES[name](self.calibrated(arch), self._proxy_batch)

    def _twin(self, arch: Mapping[str, str]) -> nn.Module:
        """The path's ``synflow_twin``, assembled from twin copies of its sub-supernet's parts,
        each prepared once and shared by every arch: no weight is copied per arch."""
        route = self.built.strategy.route(arch)
        memo = self._twin_parts.setdefault(route, PartMemo(synflow_twin))
        with torch.inference_mode(False):  # the twins are differentiated: no inference tensors
            net = self.built.strategy.supernets[route].extract(arch, memo).to(self.device)
        return net.eval()

    def _scratch(self, arch: Mapping[str, str]) -> tuple[int, nn.Module]:
        """(sub-supernet index, the path's net on this device) assembled from scratch copies of
        that sub-supernet's parts, made on first use and shared by every arch
        (``supernet.ops.parts``): no weight is copied per arch."""
        route = self.built.strategy.route(arch)
        parts = self._parts.setdefault(route, {})
        net = self.built.strategy.supernets[route].extract(arch, parts)
        # on CPU with a CPU supernet every part is there already, copied or new (an mbv3 block
        # is a new module): no ``.to``, which visits every module (2% of an mbv3 record)
        supernet_on = next(self.built.strategy.parameters()).device.type
        return route, net if self.device.type == supernet_on == "cpu" else net.to(self.device)

    @torch.inference_mode()
    def compute(self, arch: Mapping[str, str], angle: float | None = None) -> dict:
        """The record of ``arch``, computed (no memo). The net is assembled from scratch copies of
        the supernet's parts made on first use and shared by every arch (``supernet.ops.parts``),
        so no weight is copied per arch; its BN statistics are recalibrated before it scores, so
        the numbers are those of ``calibrated(arch)``. ``angle``: the path's, measured already."""
        route, net = self._scratch(arch)
        splits = {"val": self.val_batches, "train": self.train_batches or []}
        parts = self._parts[route].values()
        shared = {id(m) for m in parts if isinstance(m, nn.Module)}
        scores = self.prefix.score(net, shared, self.calibrator.batches, splits, self.device)
        return {
            "arch": str(arch),
            "score": None,  # set by __call__ (the fusion reference archs are measured first)
            "val_acc": scores["val"].acc,
            "val_loss": scores["val"].loss,
            "train_loss": scores["train"].loss if self.train_batches else None,
            **self._costs(arch, route, net, angle),
        }

    def _costs(
        self, arch: Mapping[str, str], route: int, net: nn.Module, angle: float | None = None
    ) -> dict:
        """The record's fields that do not read the validation split (``angle``: known)."""
        return {
            "params": count_params(net),
            "flops": self._flops(net) if self.count_flops else None,
            "latency_ms": self._latency(arch, net),
            "angle": self._angle(arch, net) if angle is None else angle,
            "supernet": route,
            "raced": None,
        }

    def _angle(self, arch: Mapping[str, str], net: nn.Module) -> float | None:
        """``path_angle`` of the path in the initial supernet and ``net`` (None without one)."""
        if self.initial is None:
            return None
        return path_angle(self.initial.supernets[0].extract(arch, self._initial_parts), net)

    def _latency(self, arch: Mapping[str, str], net: nn.Module) -> float | None:
        """latency_ms: predicted from the table, measured on this host, or None (both off)."""
        if self.latency_table is not None:
            return self.latency_table.predict(self.built.strategy.supernet_for(arch), arch)
        return latency_ms(net, self.input_shape) if self.measure_latency else None

    def _flops(self, net: nn.Module) -> int:
        """``search.costs.flops(net)``, summed over the stem, blocks and head of a standalone net
        (it runs them in sequence, and FLOPs add up) and over the ops of a cell (the sums that
        join them are not FLOPs to ``torch.utils.flop_counter``), each counted once per
        (structure, input shape) and then looked up."""
        if not isinstance(net, StandaloneNet):
            return flops(net, self.input_shape)
        shape, total = (1, *self.input_shape), 0
        for part in (net.stem, *net.blocks, net.head):
            if isinstance(part, FixedCell):  # every op reads a node shaped as the cell's input
                total += sum(self._part_count(op, shape)[0] for op in part.ops.values())
                continue
            count, shape = self._part_count(part, shape)
            total += count
        return total

    def _part_count(self, part: nn.Module, shape: tuple[int, ...]) -> tuple[int, tuple[int, ...]]:
        """``_count(part, shape)``, once per (structure, input shape)."""
        key = (repr(part), shape)
        if key not in self._part_flops:
            self._part_flops[key] = _count(part, shape)
        return self._part_flops[key]


def _count(part: nn.Module, shape: tuple[int, ...]) -> tuple[int, tuple[int, ...]]:
    """(FLOPs, output shape) of ``part`` in eval mode on zeros of ``shape``."""
    was_training = part.training
    part.eval()
    device = next((p.device for p in part.parameters()), torch.device("cpu"))
    with FlopCounterMode(display=False) as counter, every_tap():  # every tap: the arch's FLOPs
        out = part(torch.zeros(shape, device=device))
    part.train(was_training)
    return int(counter.get_total_flops()), tuple(out.shape)


def _check_initial(estimator: str, needs_initial: bool, initial: SharingStrategy | None) -> None:
    if needs_initial and initial is None:
        raise SharenasError(
            f"evaluator.estimator={estimator} needs the supernet's initial weights "
            "(Evaluator(initial=supernet.builder.initial_strategy(checkpoint config)))"
        )


def initial_for(estimator: str, config: Mapping) -> SharingStrategy | None:
    """The supernet before training, rebuilt from a checkpoint's ``config``, when the (resolved)
    ``estimator`` needs it (the angle); else None."""
    return initial_strategy(config) if get_estimator(estimator).needs_initial else None


def calibration_batches(value: int | str, batch_size: int, n_train: int) -> int:
    """``evaluator.calib_batches``: a count, or ``all`` for the whole training split (printed);
    ``auto`` is resolved before (``search.estimators.resolve_calibration``)."""
    if value == "all":
        batches = math.ceil(n_train / batch_size)
        print(
            f"evaluator.calib_batches=all -> {batches} batches of {batch_size} "
            f"(all {n_train} training images)",
            file=sys.stderr,
        )
        return batches
    if isinstance(value, str) and not value.lstrip("+-").isdigit():
        raise SharenasError(
            f"evaluator.calib_batches must be an integer >= 1, 'all' or 'auto', got {value!r}"
        )
    return check_int("evaluator.calib_batches", value, 1)
