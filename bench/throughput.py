"""Throughput on CPU: ranking at the cost of its forward passes, the supernet's training step
against the standalone net's, and archs ranked per second by a 500-trial Optuna TPE search.

    python -m bench.throughput [--archs 20] [--repeats 3] [--trials 500] [--spaces nb201 mbv3]
                               [--threads 1]

Per space (digits, the default search's data and evaluator settings, fresh weights: timings do
not depend on the weights' values; the sharing strategy's scheduled splits taken, as in a trained
supernet), for each of ``--archs`` random archs, milliseconds of:
- ``evaluator``: ``Evaluator(built)(arch)``, a whole record (extract, BN recalibration on the
  cached calibration batches, validation accuracy and loss, params, FLOPs), as the archs come in
  a search: its prefix cache (``search.prefix``) holds what the earlier archs left, never the
  arch's own activations (restored before each repeat);
- ``floor``: the same forward passes through the already extracted net over the same cached
  tensors (calibration batches in train mode, validation batches in eval mode), nothing else;
- ``plain``: the evaluator as it was before its scratch parts and FLOP memo: a fresh extracted
  copy (``calibrated(arch)``), scored, FLOPs counted on the whole net (the same record);
- ``naive``: a deepcopy of the supernet, the path extracted from it, its BN statistics
  recalibrated through a ``DataLoader`` over the same images, validation through a
  ``DataLoader``, params and FLOPs.
Each figure is the median CPU time of ``--repeats`` runs (one thread); the ratios are of the
sums over archs. The search's figures are wall time and CPU time. The training step (fwd + bwd +
SGD) is timed on the same batches for the supernet path and for the path's extracted net.
Synflow (an estimator's data-free part) is timed on a fresh copy of the extracted net and on the
evaluator's prepared part twins. Then ``bench.racing`` on each space (``--race-trials`` archs of
a TPE search): a trained supernet, ranked with ``evaluator.race=true`` and the space's default
estimator (mbv3's angle races exactly) against the full evaluator and the naive baseline.
Lines starting ``evaluator/floor``, ``naive/evaluator``, ``naive/racing`` and
``supernet/standalone`` are for scripts to read.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import random
import statistics
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from search.cli import register_configs
from search.costs import flops
from search.estimators import get_estimator, resolve_estimator
from search.evaluate import Evaluator
from search.study import Study
from search.zero_cost import proxy_batch, synflow
from supernet.builder import Built, build
from supernet.models import count_params
from supernet.scoring import score
from supernet.sharing.base import SplitContext
from supernet.spaces.base import Space

CONF = Path(__file__).resolve().parents[1] / "conf"


def compose_search(overrides: list[str]):
    register_configs()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="search", overrides=overrides)


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    """Median CPU milliseconds of this process in ``fn()`` over ``repeats`` calls, after one
    warm-up call. CPU time, not wall time: on one thread it is the work done, and other programs
    on a shared machine do not add to it (they still slow it through caches and clocks)."""
    fn()
    times = []
    for _ in range(repeats):
        tic = time.process_time()
        fn()
        times.append(time.process_time() - tic)
    return 1000 * statistics.median(times)


def floor_fn(ev: Evaluator, net: nn.Module) -> Callable[[], None]:
    """The forward passes a record needs, through an already extracted net, nothing else."""

    @torch.inference_mode()
    def run() -> None:
        net.train()
        for x in ev.calibrator.batches:
            net(x)
        net.eval()
        for x, _ in ev.val_batches:
            net(x)

    return run


def naive_fn(built: Built, ev: Evaluator, arch) -> Callable[[], dict]:
    """Score ``arch`` the obvious way: a private copy of the supernet, DataLoaders, the path."""
    calib = TensorDataset(torch.cat(ev.calibrator.batches))
    val = TensorDataset(*built.splits.val.tensors)

    def run() -> dict:
        net = copy.deepcopy(built.strategy).extract(arch)
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.reset_running_stats()
                m.momentum = None
        net.train()
        with torch.no_grad():
            for (x,) in DataLoader(calib, batch_size=ev.calibrator.batches[0].shape[0]):
                net(x)
            net.eval()
            correct, loss = 0, 0.0
            for x, y in DataLoader(val, batch_size=len(ev.val_batches[0][1])):
                logits = net(x)
                loss += nn.functional.cross_entropy(logits, y, reduction="sum").item()
                correct += (logits.argmax(1) == y).sum().item()
        return {
            "acc": correct,
            "loss": loss,
            "params": count_params(net),
            "flops": flops(net, ev.input_shape),
        }

    return run


def plain_fn(ev: Evaluator, arch) -> Callable[[], dict]:
    """The record the way the evaluator made it before: a fresh copy, FLOPs of the whole net."""

    @torch.no_grad()
    def run() -> dict:
        net = ev.calibrated(arch)
        val = score(net, ev.val_batches)
        acc, loss = val.acc, val.loss
        return {
            "acc": acc,
            "loss": loss,
            "params": count_params(net),
            "flops": flops(net, ev.input_shape),
        }

    return run


def rank_costs(built: Built, archs: list, repeats: int) -> list[tuple]:
    """(arch, evaluator ms, floor ms, naive ms, plain ms) per arch."""
    ev = Evaluator(built)
    rows = []
    for arch in archs:
        cached = (OrderedDict(ev.prefix.entries), ev.prefix.nbytes)  # the earlier archs' only

        def evaluate(a=arch, c=cached) -> dict:
            ev.memo.clear()
            ev.prefix.entries, ev.prefix.nbytes = OrderedDict(c[0]), c[1]
            return ev(a)

        t_ev = median_ms(evaluate, repeats)
        t_floor = median_ms(floor_fn(ev, ev.calibrated(arch)), repeats)
        t_naive = median_ms(naive_fn(built, ev, arch), repeats)
        t_plain = median_ms(plain_fn(ev, arch), repeats)
        rows.append((str(arch), t_ev, t_floor, t_naive, t_plain))
    return rows


def estimator_costs(built: Built, archs: list, repeats: int) -> list[tuple[str, float]]:
    """(label, ms summed over ``archs``) of a whole record with the default search's evaluator
    (``evaluator.estimator=auto``, ``calib_batches=auto``) and with ``train_loss`` and the whole
    training split for calibration (the default before the validation-loss fusions). The fusion's
    reference archs are scored in the warm-up call, once per evaluator, as in a search."""
    cfg = compose_search([f"space={built.space.name}"])
    settings = dict(cfg.evaluator)
    out = []
    for label, changes in (
        ("default", {}),
        ("train_loss, calib all", {"estimator": "train_loss", "calib_batches": "all"}),
    ):
        if (
            label == "default"
            and get_estimator(resolve_estimator("auto", built.space.name)).needs_initial
        ):
            continue  # the angle needs the initial supernet; its forward passes are the record's
        ev = Evaluator.from_config(built, settings | changes, seed=0)
        total = 0.0
        for arch in archs:

            def evaluate(a=arch, e=ev) -> dict:
                e.memo.clear()
                return e(a)

            total += median_ms(evaluate, repeats)
        out.append((f"{label} ({ev.scorer.estimator.name})", total))
    return out


def synflow_costs(built: Built, archs: list, repeats: int) -> tuple[float, float]:
    """(copy ms, twins ms) of synflow summed over ``archs``: on a fresh float64 copy of each
    extracted net (``search.zero_cost.synflow``), and on the evaluator's twin assembled from part
    copies prepared once (``Evaluator.zero_cost``). Warm: ``median_ms``'s warm-up call prepares an
    arch's parts, so the twins' figure is a search's cost once its parts exist (each part is
    prepared once per search), not the first visit's."""
    ev = Evaluator(built, count_flops=False, estimator="synflow", seed=0)
    batch = proxy_batch(built.splits.train, seed=0)
    copy_ms = twins_ms = 0.0
    for arch in archs:
        net = built.strategy.extract(arch).eval()
        copy_ms += median_ms(lambda n=net: synflow(n, batch), repeats)
        twins_ms += median_ms(lambda a=arch: ev.zero_cost(a, "synflow"), repeats)
    return copy_ms, twins_ms


def train_steps(built: Built, archs: list, repeats: int) -> tuple[float, float]:
    """(supernet ms, standalone ms) per training step, summed over ``archs``, same batches."""
    x, y = built.splits.train.tensors[0][:64], built.splits.train.tensors[1][:64]

    def stepper(model: nn.Module, forward: Callable[[], torch.Tensor]) -> Callable[[], None]:
        opt = torch.optim.SGD(
            model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=4e-5
        )

        def step() -> None:
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(forward(), y).backward()
            opt.step()

        return step

    sup, alone = 0.0, 0.0
    strategy = copy.deepcopy(built.strategy).train()
    for arch in archs:
        net = strategy.extract(arch).train()
        sup += median_ms(stepper(strategy, lambda a=arch: strategy(x, a)), repeats)
        alone += median_ms(stepper(net, lambda n=net: n(x)), repeats)
    return sup, alone


def _local_search(cfg: DictConfig, space: Space, evaluate: Callable[[object], dict]) -> Study:
    """The study of the search ``cfg`` over ``space`` (Optuna TPE by default, seed 0), run to
    its budget through the local backend with ``evaluate`` as the evaluator."""
    from hydra.utils import instantiate

    from search.backends.local import LocalBackend
    from search.objective import Objective

    searcher = instantiate(cfg.searcher, space=space, seed=0)
    study = Study(searcher, Objective(searcher.objectives, dict(cfg.constraints), key="val_acc"))
    LocalBackend(progress=False).run(study, evaluate)
    return study


def search_rate(space: str, trials: int) -> tuple[float, float, float, float]:
    """(wall s, CPU s, archs ranked per wall second, searcher's share of the CPU time: all but
    the evaluator's) of a ``trials``-trial Optuna TPE search through the local backend, end to
    end from a built supernet."""
    cfg = compose_search([f"space={space}", f"searcher.n_trials={trials}"])
    built = build(cfg)
    evaluator = Evaluator.from_config(built, cfg.evaluator, seed=0)
    spent = [0.0]

    def timed(arch) -> dict:
        tic = time.process_time()
        record = evaluator(arch)
        spent[0] += time.process_time() - tic
        return record

    tic, cpu = time.perf_counter(), time.process_time()
    study = _local_search(cfg, built.space, timed)
    total, cpu = time.perf_counter() - tic, time.process_time() - cpu
    return total, cpu, len(study.records()) / total, 1 - spent[0] / cpu


def searcher_alone(space: str, trials: int) -> tuple[int, int, float]:
    """(distinct archs, trials, searcher CPU s) of a ``trials``-trial search whose evaluator is a
    constant-time stub (a record from a hash of the arch): the study and sampler's own cost."""
    cfg = compose_search([f"space={space}", f"searcher.n_trials={trials}"])
    search_space = build(cfg).space

    def stub(arch) -> dict:
        value = int(hashlib.sha256(str(arch).encode()).hexdigest()[:8], 16) / 2**32
        return {"score": value, "val_acc": value, "val_loss": 1 - value, "params": 1, "flops": 1}

    cpu = time.process_time()
    study = _local_search(cfg, search_space, stub)
    return len(study.records()), len(study.trials()), time.process_time() - cpu


def split_as_trained(built: Built) -> int:
    """Take the sharing strategy's scheduled splits, as training does (fresh weights: timings do
    not depend on their values); returns the number of sub-supernets. A trained supernet of the
    default recipe (``fewshot``) holds one per choice of its split decision, and the naive
    baseline's deepcopy copies them all."""
    for epoch in built.strategy.split_schedule():
        built.strategy.maybe_split(
            SplitContext(epoch=epoch, loss_fn=nn.functional.cross_entropy, batches=[], log=len)
        )
    return built.strategy.num_supernets


def report_space(space: str, args: argparse.Namespace) -> None:
    torch.manual_seed(0)
    built = build(compose_search([f"space={space}"]))
    parts = split_as_trained(built)
    rng = random.Random(0)
    archs = [built.space.sample(rng) for _ in range(args.archs)]
    rows = rank_costs(built, archs, args.repeats)
    print(
        f"\n{space}: digits ({len(built.splits.val)} val images, "
        f"{sum(len(b) for b in Evaluator(built).calibrator.batches)} calibration images), "
        f"{parts} sub-supernets ({built.strategy.name}, as trained), {len(archs)} random archs, "
        f"ms per arch (median of {args.repeats})"
    )
    print(
        f"{'evaluator':>10} {'floor':>8} {'naive':>8} {'plain':>8} {'ev/floor':>9} "
        f"{'naive/ev':>9} {'plain/ev':>9}  arch"
    )
    for arch, t_ev, t_floor, t_naive, t_plain in rows:
        print(
            f"{t_ev:10.2f} {t_floor:8.2f} {t_naive:8.2f} {t_plain:8.2f} {t_ev / t_floor:9.3f} "
            f"{t_naive / t_ev:9.2f} {t_plain / t_ev:9.2f}  {arch}"
        )
    ev, fl, nv, pl = (sum(r[i] for r in rows) for i in (1, 2, 3, 4))
    print(f"evaluator/floor {ev / fl:.3f} ({space}; target <= 1.10)")
    print(f"plain/floor {pl / fl:.3f} ({space}; the evaluator before this version)")
    print(f"naive/evaluator {nv / ev:.2f} ({space}; target >= 3)")
    costs = estimator_costs(built, archs, args.repeats)
    if len(costs) == 2:
        (now, t_now), (before, t_before) = costs
        print(
            f"record cost, whole records over the same archs: {now} {t_now / len(archs):.1f} ms "
            f"per arch, {before} {t_before / len(archs):.1f} ms"
        )
        print(f"train_loss/default {t_before / t_now:.2f} ({space}; the estimator's own passes)")
    by_copy, by_twins = synflow_costs(built, archs, args.repeats)
    print(
        f"synflow per arch: a fresh copy {by_copy / len(archs):.1f} ms, prepared part twins "
        f"{by_twins / len(archs):.1f} ms; copy/twins {by_copy / by_twins:.2f} ({space})"
    )
    trained = archs[: args.train_archs]
    sup, alone = train_steps(built, trained, args.repeats)
    print(
        f"training step, batch 64, {len(trained)} archs: supernet {sup:.1f} ms, "
        f"standalone {alone:.1f} ms (sums)"
    )
    print(f"supernet/standalone {sup / alone:.3f} ({space}; target <= 1.15)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", nargs="*", default=["nb201", "mbv3"])
    parser.add_argument("--archs", type=int, default=20)
    parser.add_argument("--train-archs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--trials", type=int, default=500, help="Optuna TPE search; 0: skip")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--race-trials", type=int, default=200, help="racing on each trained supernet; 0: skip"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s)")
    for space in args.spaces:
        report_space(space, args)
    if args.race_trials:
        from bench.racing import race_report

        for space in args.spaces:
            torch.manual_seed(0)
            race_report(space, args.race_trials)
    if args.trials:
        total, cpu, rate, share = search_rate("nb201", args.trials)
        print(
            f"\nOptuna TPE search, nb201 digits, {args.trials} trials, local backend: "
            f"{total:.1f} s wall, {cpu:.1f} s CPU, {rate:.2f} archs ranked/s (wall), "
            f"{args.trials / cpu:.2f} per CPU second"
        )
        print(f"searcher share {share:.3f} (CPU time outside the evaluator; target < 0.10)")
        archs, told, alone = searcher_alone("nb201", args.trials)
        print(
            f"searcher alone (a constant-time stub for the evaluator): {archs} archs, {told} "
            f"trials told (repeats included), {alone:.2f} s CPU, {1000 * alone / archs:.1f} ms "
            f"per arch"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
