"""Supernet training: a sharing strategy + a path sampler, checkpointed each epoch, resumable.

``train(cfg) -> metrics`` is the whole story; ``train.py`` only wraps it in ``@hydra.main``. A run
goes through named phases: output checks, set-up (``supernet.train_setup``), resume, then per
epoch the steps, split-and-rebuild, scoring and save. Training stops at the first non-finite loss
or gradient, naming the epoch and step; the last good checkpoint is kept.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import nn
from tqdm import tqdm

from supernet import distributed
from supernet.builder import config_to_save
from supernet.checkpoint import check_output
from supernet.config import check_train_config, checkpoint_config_diff, program, run_dir
from supernet.distributed import Ranks
from supernet.errors import SharenasError
from supernet.fileio import clean_orphans
from supernet.optim import build_optimizer, rebuild_after_split, resume_scheduler
from supernet.scoring import batches_of, score
from supernet.train_setup import (
    StepHook,
    TrainRun,
    finish_set_up,
    pick_device,
    set_up,
    split_context,
)
from supernet.train_state import TrainState


class TrainingDivergedError(SharenasError):
    """A non-finite loss or gradient: training stopped before the optimizer step applied it."""


@dataclass
class _EpochStats:
    """What one epoch measured on its first path per leaf (summed over processes)."""

    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0


def train(
    cfg: DictConfig, out_dir: str | Path | None = None, step_hook: StepHook | None = None
) -> dict:
    """Train the supernet described by ``cfg``; return final metrics. Writes ``supernet.pt`` and
    TensorBoard events (``tb/``) into the run directory. Under ``torchrun`` every process trains
    its share of each batch and rank 0 writes (``supernet.distributed``). ``step_hook`` sees each
    step's losses (``supernet.train_setup.StepHook``; tests inject faults with it)."""
    check_train_config(cfg)
    ranks, device = distributed.init(pick_device(cfg.trainer.device))
    try:
        return _train(cfg, out_dir, ranks, device, step_hook)
    finally:
        distributed.close(ranks)


def _prepare_output(cfg: DictConfig, out_dir: str | Path | None, ranks: Ranks) -> Path:
    """The run directory, after checking the checkpoint path; removes the temp files a killed
    save left there (and says so)."""
    # Hydra names run directories by the clock, which can differ between processes: use rank 0's
    out = Path(distributed.same_everywhere(str(run_dir(out_dir)), ranks))
    tc = cfg.trainer
    check_output(out / tc.checkpoint, bool(tc.resume), bool(tc.overwrite))
    if ranks.main and (orphans := clean_orphans(out / tc.checkpoint)):
        names = ", ".join(o.name for o in orphans)
        print(f"removed {len(orphans)} temp file(s) of an interrupted checkpoint save: {names}")
    return out


def _train(
    cfg: DictConfig, out_dir, ranks: Ranks, device: torch.device, step_hook: StepHook | None
) -> dict:
    distributed.check_batch(int(cfg.trainer.batch_size), ranks)
    run = set_up(cfg, _prepare_output(cfg, out_dir, ranks), ranks, device)
    run.step_hook = step_hook
    state = _resume(run)
    finish_set_up(run, state.ema if state else None, resumed=state is not None)
    metrics: dict = {"epoch": run.start_epoch}
    try:
        for epoch in range(run.start_epoch, _end_epoch(run)):
            tic = time.time()
            stats = _epoch(run, epoch)
            _split_and_rebuild(run, epoch)
            stats = _EpochStats(
                *distributed.total([stats.loss_sum, stats.correct, stats.seen], ranks, device)
            )
            if ranks.main:  # rank 0 evaluates, logs and writes; the others wait for it
                metrics = _score_epoch(run, epoch, stats, tic)
                _save(run, epoch, metrics)
            distributed.barrier(ranks)
    finally:
        if run.writer is not None:
            run.writer.close()
    metrics["checkpoint"] = str(run.ckpt_path)
    if ranks.main:
        tb = run.out / "tb"
        tqdm.write(
            f"checkpoint: {run.ckpt_path}\nTensorBoard: tensorboard --logdir {tb}\n"
            f"search it: {program('search')} supernet.checkpoint={run.ckpt_path} "
            f"space={run.cfg.space.name}"
        )
    return metrics


def _resume(run: TrainRun) -> TrainState | None:
    """Continue from the run's checkpoint when ``trainer.resume`` is set and one exists: weights,
    partition, optimizer, schedule, sampler and generator states (torch's RNG comes last, in
    ``finish_set_up``)."""
    tc = run.cfg.trainer
    if not tc.resume:
        return None
    if not run.ckpt_path.exists():
        run.say(f"trainer.resume=true but {run.ckpt_path} does not exist; starting from scratch")
        return None
    state = TrainState.load(run.ckpt_path, space=run.built.space.name)
    if diffs := checkpoint_config_diff(run.cfg, state.config):
        changed = "; ".join(d for group in diffs.values() for d in group)
        raise SharenasError(
            f"trainer.resume: {run.ckpt_path} was trained with other settings ({changed}); "
            "resume with the checkpoint's settings, or train into another hydra.run.dir"
        )
    strategy = run.strategy
    strategy.load_sharing_state(state.sharing)
    strategy.load_state_dict(state.model)
    strategy.to(run.device)
    run.opt = build_optimizer(tc, strategy)
    run.opt.load_state_dict(state.optimizer)
    saved_trainer = state.config.get("trainer", {})
    run.sched = resume_scheduler(tc, run.opt, saved_trainer, state.scheduler, state.epoch, run.say)
    run.sampler.load_state_dict(state.sampler)
    run.generator.set_state(state.rng["loader"])
    if "augment" in state.rng:
        run.augment.set_state(state.rng["augment"])
    elif run.augment.enabled:  # a checkpoint from before trainer.augment
        run.say("resume: the checkpoint has no augmentation state; its generator starts afresh")
    run.rng = state.rng
    run.start_epoch = int(state.epoch)
    run.say(f"resumed from {run.ckpt_path} at epoch {run.start_epoch}")
    return state


def _end_epoch(run: TrainRun) -> int:
    tc = run.cfg.trainer
    end = int(tc.epochs)
    if tc.stop_after:
        end = min(end, run.start_epoch + int(tc.stop_after))
    if run.start_epoch >= end:
        run.say(
            f"nothing to train: the checkpoint has {run.start_epoch} epochs done and "
            f"trainer.epochs={tc.epochs}; raise trainer.epochs to train on"
        )
    return end


def _epoch(run: TrainRun, epoch: int) -> _EpochStats:
    """One epoch of ``run.steps`` optimizer steps (the loader restarts when it runs out)."""
    tc = run.cfg.trainer
    run.strategy.train()
    run.sampler.set_epoch(epoch)
    stats = _EpochStats()
    endless = itertools.chain.from_iterable(itertools.repeat(run.loader))
    batches = itertools.islice(endless, run.steps)
    bar = tqdm(
        batches,
        total=run.steps,
        desc=f"epoch {epoch + 1}/{tc.epochs}",
        disable=not (tc.progress and run.ranks.main),
        leave=False,
    )
    for step, (x, y) in enumerate(bar):
        _step(run, epoch, step, x, y, stats)
    return stats


def _step_loss(
    logits: torch.Tensor, y: torch.Tensor, teacher: torch.Tensor | None, smoothing: float
) -> torch.Tensor:
    if teacher is None:
        return nn.functional.cross_entropy(logits, y, label_smoothing=smoothing)
    return nn.functional.kl_div(logits.log_softmax(-1), teacher, reduction="batchmean")


def _step(run: TrainRun, epoch: int, step: int, x, y, stats: _EpochStats) -> None:
    """One optimizer step over the sampled paths of every leaf; refuses a non-finite loss or
    gradient norm before the optimizer applies it (the same decision on every process: the
    gradients, hence their norm, are all-reduced)."""
    tc, device = run.cfg.trainer, run.device
    # the whole batch on every rank alike (one generator state to checkpoint), then shard
    x, y = distributed.shard(run.augment(x.to(device)), y.to(device), run.ranks)
    if tc.channels_last and device.type == "cuda":
        x = x.to(memory_format=torch.channels_last)
    run.opt.zero_grad(set_to_none=True)
    total = torch.zeros((), device=device)
    for leaf in run.strategy.step_leaves():
        teacher = None
        for k, arch in enumerate(run.sampler.paths(leaf)):
            with run.autocast():
                logits = run.model(x, arch)
                loss = _step_loss(logits, y, teacher if k else None, float(tc.label_smoothing))
            if run.step_hook is not None:
                loss = run.step_hook(epoch + 1, step + 1, loss)
            loss.backward()
            total = total + loss.detach().float()
            if k == 0:
                stats.loss_sum += loss.item() * len(y)
                stats.correct += (logits.argmax(1) == y).sum().item()
                stats.seen += len(y)
                if run.sampler.distill:
                    teacher = logits.detach().float().softmax(-1)
    norm = nn.utils.clip_grad_norm_(run.strategy.parameters(), float(tc.grad_clip))
    if not bool(torch.isfinite(total) & torch.isfinite(norm.to(device))):
        _diverged(run, epoch, step, total.item(), norm.item())
    run.opt.step()
    if run.ema is not None:
        run.ema.update(run.strategy)
    run.global_step += 1
    if run.strategy.probe_every and run.global_step % run.strategy.probe_every == 0:
        run.strategy.probe(split_context(run.cfg, run.probe, epoch, run.global_step, run.writer))


def _diverged(run: TrainRun, epoch: int, step: int, loss: float, norm: float) -> None:
    what = f"loss {loss}" if not math.isfinite(loss) else f"gradient norm {norm}"
    if epoch > 0 and run.ckpt_path.exists():  # written (or resumed) after `epoch` epochs
        kept = f"the last good checkpoint {run.ckpt_path} (epoch {epoch}) is kept"
    elif run.ckpt_path.exists():
        kept = f"{run.ckpt_path} is left as it was"
    else:
        kept = "no checkpoint was written"
    raise TrainingDivergedError(
        f"training stopped: non-finite {what} at epoch {epoch + 1}, step {step + 1} (optimizer "
        f"step {run.global_step + 1}); {kept}; lower trainer.optimizer.lr "
        f"(now {run.opt.param_groups[0]['lr']:g}) or trainer.grad_clip"
    )


def _split_and_rebuild(run: TrainRun, epoch: int) -> None:
    """End of an epoch: step the schedule; the strategy may split (on every rank alike: same
    weights, batches and seed), and then the optimizer, DDP wrapper and EMA grow with it."""
    tc = run.cfg.trainer
    run.sched.step()
    ctx = split_context(run.cfg, run.probe, epoch + 1, run.global_step, run.writer)
    pairs = run.strategy.maybe_split(ctx)
    if pairs:
        run.strategy.to(run.device)
        run.opt, run.sched = rebuild_after_split(tc, run.strategy, run.opt, run.sched, pairs)
        run.model = distributed.wrap(run.strategy, run.ranks, run.device)  # the grown parameters
        if run.ema is not None:
            run.ema.after_split(run.strategy, pairs)
        if run.writer is not None:  # the partition tree after the split, one row per sub-supernet
            rows = [
                f"| {i} | `{leaf or 'whole space'}` |" for i, leaf in enumerate(run.strategy.leaves)
            ]
            table = "| sub-supernet | owns |\n|---|---|\n" + "\n".join(rows)
            run.writer.add_text("sharing/partition", table, epoch + 1)
    distributed.assert_in_sync(run.strategy, run.ranks, f"epoch {epoch + 1}", run.strategy.leaves)


def _score_epoch(run: TrainRun, epoch: int, stats: _EpochStats, tic: float) -> dict:
    """The epoch's metrics (val accuracy of the largest and smallest path, BN-recalibrated, with
    the weights a search will score), logged to TensorBoard and printed."""
    strategy = run.strategy
    scored = strategy if run.ema is None else run.ema.module
    val = batches_of(run.built.splits.val)
    space = run.built.space

    def val_acc(arch) -> float:
        net = scored.extract(arch).to(run.device)
        return score(net, val, run.calibrator, run.device).acc

    metrics = {
        "epoch": epoch + 1,
        "train_loss": stats.loss_sum / max(stats.seen, 1),
        "train_acc": 100.0 * stats.correct / max(stats.seen, 1),
        "train_samples": int(stats.seen),  # images x sub-supernets trained, over all processes
        "val_acc_largest": val_acc(space.largest()),
        "val_acc_smallest": val_acc(space.smallest()),
        "num_supernets": strategy.num_supernets,
        "param_bytes": strategy.parameter_bytes(),
        "lr": run.opt.param_groups[0]["lr"],
        "epoch_seconds": time.time() - tic,
    }
    for key, value in metrics.items():
        if key != "epoch":
            run.writer.add_scalar(f"train/{key}", value, epoch + 1)
    tqdm.write(
        f"epoch {epoch + 1}/{run.cfg.trainer.epochs}  loss {metrics['train_loss']:.3f}  "
        f"acc {metrics['train_acc']:.1f}%  val(largest) {metrics['val_acc_largest']:.1f}%  "
        f"val(smallest) {metrics['val_acc_smallest']:.1f}%  sub-supernets "
        f"{metrics['num_supernets']} ({metrics['param_bytes'] / 1e6:.2f} MB)  "
        f"{metrics['epoch_seconds']:.1f}s"
    )
    return metrics


def _save(run: TrainRun, epoch: int, metrics: dict) -> None:
    """The checkpoint after ``epoch``, written atomically (refused if a weight is non-finite)."""
    TrainState(
        space=run.built.space.name,
        config=config_to_save(run.cfg),
        sharing=run.strategy.sharing_state(),
        model=run.strategy.state_dict(),
        epoch=epoch + 1,
        optimizer=run.opt.state_dict(),
        scheduler=run.sched.state_dict(),
        sampler=run.sampler.state_dict(),
        metrics=metrics,
        rng={
            "torch": torch.get_rng_state(),
            "loader": run.generator.get_state(),
            "augment": run.augment.get_state(),
        },
        ema=None if run.ema is None else run.ema.state_dict(),
    ).save(run.ckpt_path)
