"""The evaluator's prefix cache: the shared leading parts of two paths run once, exactly.

The evaluator assembles every path from one memo of part copies per sub-supernet
(``supernet.ops.parts``), so two paths that begin with the same parts begin with the *same
modules*. An mbv3 path of a sub-supernet is its stem and blocks, each a memoised copy keyed by its
setting; an nb201 path shares its stem (its cells are assembled per arch).

What a leading run of parts outputs depends on their weights and the fixed batches alone:
- in calibration (``update_bn``: statistics reset, cumulative average, train mode) every
  BatchNorm normalises with the batch's own statistics, whatever its buffers held;
- the statistics it ends with are therefore the same for every path with that prefix, and so are
  the prefix's eval-mode outputs on the validation (and training) batches.

So the cache keeps, per prefix, the calibration batches' and each scored split's activations at
the prefix's end, and the rest of the next path that shares it runs from there: the same
operations on the same tensors as a full pass, so the record is bit for bit the same (tested:
``tests/search/test_prefix.py``). Entries hold their modules (so no id is reused while an entry
lives) and are evicted least recently used first, within ``budget_mb``. An entry is made for
every depth of the shared run, since a later path may share any of them: on mbv3 the stem and the
first block, at the highest resolution, are shared by many paths. After a path reused a prefix,
the BN buffers of its scratch net's prefix parts hold whatever their last calibration left (its
figures are those of ``calibrated(arch)``, its buffers there are not).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.optim.swa_utils import update_bn

from supernet.models import StandaloneNet
from supernet.scoring import Score, tally

Batches = Sequence[tuple[torch.Tensor, torch.Tensor]]


@dataclass
class _Entry:
    modules: tuple[nn.Module, ...]  # held: their ids are not reused while the entry lives
    calibration: list[torch.Tensor]  # train-mode outputs on the calibration batches
    splits: dict[str, list[torch.Tensor]]  # eval-mode outputs on each scored split's batches
    nbytes: int


class _Run(nn.Module):
    """Runs ``parts`` in order and keeps the outputs of the first ``depths`` of them that fit in
    ``budget`` bytes, shallowest first, over ``images`` images in all: decided on the first batch
    from its outputs' bytes per image, so what is held while a path is scored stays within the
    budget (a stem's output over large splits is not kept, the smaller ones after it may be)."""

    def __init__(self, parts: Sequence[nn.Module], depths: int, images: int, budget: int) -> None:
        super().__init__()
        self.parts = nn.ModuleList(parts)
        self.depths, self.images, self.budget = depths, images, budget
        self.keep: list[bool] | None = None  # per depth, decided on the first batch
        self.outputs: list[list[torch.Tensor]] = [[] for _ in range(depths)]

    def collect(self) -> list[list[torch.Tensor]]:
        """The outputs kept since the last ``collect``, per depth (empty where not kept)."""
        out, self.outputs = self.outputs, [[] for _ in range(self.depths)]
        return out

    def _fit(self, outputs: list[torch.Tensor], batch: int) -> list[bool]:
        left, keep = self.budget, []
        for out in outputs:
            size = out.untyped_storage().nbytes() * self.images // max(batch, 1)
            keep.append(size <= left)
            left -= size if keep[-1] else 0
        return keep

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, outputs = len(x), []
        for i, part in enumerate(self.parts):
            x = part(x)
            if i < self.depths and (self.keep is None or self.keep[i]):
                outputs.append((i, x))
        if self.keep is None:
            self.keep = self._fit([out for _, out in outputs], batch)
        for i, out in outputs:
            if self.keep[i]:
                self.outputs[i].append(out)
        return x


class PrefixCache:
    """Activations at the end of shared prefixes, least recently used out, within ``budget_mb``
    (0: nothing is kept, every path runs in full). ``hits`` counts the paths that reused a
    prefix, ``reused`` the parts they did not run."""

    def __init__(self, budget_mb: float = 128.0) -> None:
        self.budget = int(budget_mb * 2**20)
        self.entries: OrderedDict[tuple[int, ...], _Entry] = OrderedDict()
        self.nbytes = 0
        self.hits = self.reused = 0

    def __getstate__(self) -> dict:
        """Pickled empty: its keys are module ids of this process (Ray ships the evaluator)."""
        return {**self.__dict__, "entries": OrderedDict(), "nbytes": 0}

    def score(
        self,
        net: StandaloneNet,
        shared: set[int],
        calibration: Sequence[torch.Tensor],
        splits: Mapping[str, Batches],
        device: torch.device,
    ) -> dict[str, Score]:
        """``score(net, batches, calibrator)`` of each split in ``splits``, with BN recalibrated on
        ``calibration`` first; ``shared``: the ids of the modules that are memoised parts."""
        chain = [net.stem, *net.blocks]
        run_len = next((i for i, m in enumerate(chain) if id(m) not in shared), len(chain))
        keys = [tuple(id(m) for m in chain[: d + 1]) for d in range(run_len)]
        depth = next((d + 1 for d in reversed(range(run_len)) if keys[d] in self.entries), 0)
        if depth:
            self.hits += 1
            self.reused += depth
            for key in reversed(keys[:depth]):  # the shallower, the more paths share it
                if key in self.entries:
                    self.entries.move_to_end(key)
            entry = self.entries[keys[depth - 1]]
            inputs, split_inputs = entry.calibration, entry.splits
        else:
            inputs = list(calibration)
            split_inputs = {name: [x for x, _ in b] for name, b in splits.items()}
        images = sum(len(x) for x in inputs) + sum(len(y) for b in splits.values() for _, y in b)
        run = _Run([*chain[depth:], net.head], run_len - depth, images, self.budget)
        update_bn(inputs, run, device)  # what BatchNormCalibrator does: reset, average, train
        run.eval()
        made = run.collect()
        scores, kept = {}, {}
        for name, batches in splits.items():
            xs = (x.to(device) for x in split_inputs[name])
            scores[name] = tally((run(x), y.to(device)) for x, (_, y) in zip(xs, batches))
            kept[name] = run.collect()
        for i in reversed(range(run_len - depth)):  # deepest first: evicted before the shallower
            if inputs and len(made[i]) == len(inputs):  # kept (and calibrated: it has BN)
                outs = {name: kept[name][i] for name in splits}
                self._store(keys[depth + i], tuple(chain[: depth + i + 1]), made[i], outs)
        return scores

    def _store(
        self,
        key: tuple[int, ...],
        modules: tuple[nn.Module, ...],
        calibration: list[torch.Tensor],
        splits: dict[str, list[torch.Tensor]],
    ) -> None:
        tensors = [*calibration, *(t for ts in splits.values() for t in ts)]
        nbytes = sum(t.untyped_storage().nbytes() for t in tensors)
        if nbytes > self.budget:
            return
        while self.nbytes + nbytes > self.budget:
            _, old = self.entries.popitem(last=False)
            self.nbytes -= old.nbytes
        self.entries[key] = _Entry(modules, calibration, splits, nbytes)
        self.nbytes += nbytes
