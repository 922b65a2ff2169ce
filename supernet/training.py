"""Supernet training: a sharing strategy + a path sampler, checkpointed each epoch, resumable.

``train(cfg) -> metrics`` is the whole story; ``train.py`` only wraps it in ``@hydra.main``.
"""

from __future__ import annotations

import copy
import itertools
import sys
import time
import warnings
from contextlib import nullcontext
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from supernet import distributed
from supernet.augment import BatchAugment
from supernet.bn import BatchNormCalibrator
from supernet.builder import Built, build, build_sampler, config_to_save
from supernet.checkpoint import load_checkpoint, save_checkpoint
from supernet.config import check_train_config, checkpoint_config_diff, run_dir
from supernet.data import make_loader
from supernet.distributed import Ranks
from supernet.ema import WeightEMA, init_share
from supernet.errors import SharenasError
from supernet.sharing.base import SharingStrategy, SplitContext
from supernet.threads import apply_threads, local_world_size


def _warn_late_splits(strategy: SharingStrategy, epochs: int) -> None:
    """A split scheduled after the last epoch never happens: say so instead of silently training
    one-shot."""
    late = sorted({e for e in strategy.split_schedule() if e > epochs})
    if late:
        print(
            f"warning: sharing splits at epoch(s) {late} come after the last epoch "
            f"(trainer.epochs={epochs}); those splits will not happen",
            file=sys.stderr,
        )


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SharenasError(f"trainer.device={name!r} but CUDA is not available; use trainer=cpu")
    return torch.device(name)


def _optimizer(cfg: DictConfig, module: nn.Module) -> torch.optim.Optimizer:
    """``trainer.optimizer`` over ``module``'s parameters; a bad setting (``lr=-1``) is one line."""
    try:
        return instantiate(cfg.trainer.optimizer)(module.parameters())
    except (ValueError, TypeError) as err:
        raise SharenasError(f"bad trainer.optimizer setting: {err}") from None


def _silent(*args: object, **kwargs: object) -> None:
    """``print`` for the processes that are not rank 0."""


def _resume_scheduler(cfg: DictConfig, opt, payload: dict, done_epochs: int, say=print):
    """The checkpoint's scheduler state when the schedule is unchanged (bit-exact resume). When
    the config changed it (e.g. more ``trainer.epochs`` stretch a cosine schedule), the new
    schedule is replayed from its start for the epochs already done, so training continues at the
    learning rate the new schedule has there instead of the old schedule's final value."""
    saved = payload["config"].get("trainer", {})
    current = config_to_save(cfg)["trainer"]
    same = saved.get("scheduler") == current.get("scheduler") and saved.get("epochs") == int(
        cfg.trainer.epochs
    )
    if same:
        sched = instantiate(cfg.trainer.scheduler)(opt)
        sched.load_state_dict(payload["scheduler"])
        return sched
    for group in opt.param_groups:
        group["lr"] = group.get("initial_lr", group["lr"])
    sched = instantiate(cfg.trainer.scheduler)(opt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # stepping the scheduler without optimizer steps
        for _ in range(done_epochs):
            sched.step()
    say(
        f"resume: the schedule changed (epochs {saved.get('epochs')} -> {cfg.trainer.epochs}); "
        f"continuing the new schedule at epoch {done_epochs}, lr {opt.param_groups[0]['lr']:.4g}"
    )
    return sched


def _rebuild_optimizer(cfg: DictConfig, built: Built, old_opt, old_sched, pairs):
    """A new optimizer over the (grown) parameter list; children inherit their parent's state."""
    opt = _optimizer(cfg, built.strategy)
    for new_group, old_group in zip(opt.param_groups, old_opt.param_groups, strict=False):
        for key in ("lr", "initial_lr"):
            if key in old_group:
                new_group[key] = old_group[key]
    for p, state in old_opt.state.items():
        opt.state[p] = state
    for new_p, src_p in pairs:
        if src_p in old_opt.state:
            opt.state[new_p] = copy.deepcopy(old_opt.state[src_p])
    sched = instantiate(cfg.trainer.scheduler)(opt)
    sched.load_state_dict(old_sched.state_dict())
    return opt, sched


@torch.no_grad()
def _val_accuracy(strategy: SharingStrategy, val, arch, calibrator: BatchNormCalibrator, device):
    net = calibrator(strategy.extract(arch).to(device))
    correct = 0
    for x, y in make_loader(val, 500, shuffle=False):
        correct += (net(x.to(device)).argmax(1).cpu() == y).sum().item()
    return 100.0 * correct / len(val)


def _step_loss(
    logits: torch.Tensor, y: torch.Tensor, teacher: torch.Tensor | None, smoothing: float
) -> torch.Tensor:
    if teacher is None:
        return nn.functional.cross_entropy(logits, y, label_smoothing=smoothing)
    return nn.functional.kl_div(logits.log_softmax(-1), teacher, reduction="batchmean")


def _batch_augment(cfg: DictConfig, built: Built, say) -> BatchAugment:
    """The training batches' augmentation (``trainer.augment``), checked against the data."""
    augment = BatchAugment(
        int(cfg.trainer.augment.crop_pad),
        bool(cfg.trainer.augment.hflip),
        seed=int(cfg.seed),
        fill=-built.splits.mean / built.splits.std,  # a black pixel, normalised
    )
    augment.check_image_size(built.splits.image_size)
    if augment.hflip and built.splits.name in ("digits", "mnist5k"):
        say(
            f"warning: trainer.augment.hflip=true mirrors {built.splits.name}'s images, and a "
            "mirrored digit can read as another (use it for photos, not digits)"
        )
    return augment


def _weight_ema(tc: DictConfig, strategy: SharingStrategy, payload: dict | None, steps: int, say):
    """The EMA of the weights when ``trainer.ema_decay`` is set (``supernet.ema``), continued from
    a resumed checkpoint's; warns when the run is too short for the decay."""
    saved = (payload or {}).get("ema")
    if tc.ema_decay is None:
        if saved is not None:
            say(
                "resume: trainer.ema_decay=null drops the checkpoint's EMA; searches will score "
                "the raw weights"
            )
        return None
    ema = WeightEMA(strategy, float(tc.ema_decay))
    total = int(tc.epochs) * steps
    if (share := init_share(ema.decay, total)) > 0.1:
        print(
            f"warning: with trainer.ema_decay={ema.decay} the average keeps {share:.0%} of the "
            f"first step's weights after {total} optimizer steps; lower it "
            f"(e.g. {1 - 3 / total:.3g}) or train longer",
            file=sys.stderr,
        )
    if saved is not None:
        ema.load_state_dict(saved)
        if saved["decay"] != ema.decay:
            say(f"resume: the EMA continues with decay {ema.decay} (checkpoint: {saved['decay']})")
    elif payload is not None:
        say("resume: the checkpoint has no EMA of its weights; the average starts now")
    return ema


def _split_context(cfg: DictConfig, probe: list, epoch: int, step: int, writer) -> SplitContext:
    """What a strategy sees when it probes (after a step) or may split (after an epoch); every
    process alike (same weights, batches and seed), and only the one with a writer records."""
    return SplitContext(
        epoch=epoch,
        batches=probe,
        rng_seed=int(cfg.seed) + epoch,
        loss_fn=lambda m, xb, yb: nn.functional.cross_entropy(m(xb), yb),
        log=tqdm.write if writer is not None else _silent,
        step=step,
        **({} if writer is None else {"scalar": writer.add_scalar, "text": writer.add_text}),
    )


def train(cfg: DictConfig, out_dir: str | Path | None = None) -> dict:
    """Train the supernet described by ``cfg``; return final metrics. Writes ``supernet.pt`` and
    TensorBoard events (``tb/``) into the run directory. Under ``torchrun`` every process trains
    its share of each batch and rank 0 writes (``supernet.distributed``)."""
    check_train_config(cfg)
    ranks, device = distributed.init(_device(cfg.trainer.device))
    try:
        return _train(cfg, out_dir, ranks, device)
    finally:
        distributed.close(ranks)


def _train(cfg: DictConfig, out_dir: str | Path | None, ranks: Ranks, device: torch.device) -> dict:
    distributed.check_batch(int(cfg.trainer.batch_size), ranks)
    say = print if ranks.main else _silent
    # Hydra names run directories by the clock, which can differ between processes: use rank 0's
    out = Path(distributed.same_everywhere(str(run_dir(out_dir)), ranks))
    out.mkdir(parents=True, exist_ok=True)
    tc = cfg.trainer
    # torchrun on CPU: the processes of this machine share its CPUs
    apply_threads(tc.num_threads, workers=local_world_size(), say=say)
    torch.manual_seed(int(cfg.seed))
    built = build(cfg)
    _warn_late_splits(built.strategy, int(tc.epochs))
    sampler = build_sampler(cfg, built)
    strategy = built.strategy.to(device)
    loader = make_loader(
        built.splits.train, int(tc.batch_size), shuffle=True, seed=int(cfg.seed), drop_last=True
    )
    if len(loader) == 0:  # drop_last: not one whole batch (and the epoch loop would never end)
        raise SharenasError(
            f"the training split has {len(built.splits.train)} images, fewer than "
            f"trainer.batch_size={tc.batch_size}; lower trainer.batch_size or use more data "
            "(data.limit?)"
        )
    generator = loader.sampler.sampler.generator
    augment = _batch_augment(cfg, built, say)
    smoothing = float(tc.label_smoothing)
    steps = int(tc.steps_per_epoch or len(loader))
    opt = _optimizer(cfg, strategy)
    sched = instantiate(tc.scheduler)(opt)
    ckpt_path = out / tc.checkpoint
    start_epoch, payload = 0, None
    if tc.resume and ckpt_path.exists():
        payload = load_checkpoint(ckpt_path, space=built.space.name)
        if diffs := checkpoint_config_diff(cfg, payload["config"]):
            changed = "; ".join(d for group in diffs.values() for d in group)
            raise SharenasError(
                f"trainer.resume: {ckpt_path} was trained with other settings ({changed}); "
                "resume with the checkpoint's settings, or train into another hydra.run.dir"
            )
        strategy.load_sharing_state(payload["sharing"])
        strategy.load_state_dict(payload["model"])
        strategy.to(device)
        opt = _optimizer(cfg, strategy)
        opt.load_state_dict(payload["optimizer"])
        sched = _resume_scheduler(cfg, opt, payload, int(payload["epoch"]), say)
        sampler.load_state_dict(payload["sampler"])
        torch.set_rng_state(payload["rng"]["torch"])
        generator.set_state(payload["rng"]["loader"])
        if "augment" in payload["rng"]:
            augment.set_state(payload["rng"]["augment"])
        elif augment.enabled:  # a checkpoint from before trainer.augment
            say("resume: the checkpoint has no augmentation state; its generator starts afresh")
        start_epoch = int(payload["epoch"])
        say(f"resumed from {ckpt_path} at epoch {start_epoch}")
    elif tc.resume:
        say(f"trainer.resume=true but {ckpt_path} does not exist; starting from scratch")
    if tc.channels_last and device.type == "cuda":
        strategy.to(memory_format=torch.channels_last)
    # rank 0 alone evaluates and saves, so it alone keeps the average
    ema = _weight_ema(tc, strategy, payload, steps, say) if ranks.main else None
    use_amp = bool(tc.amp) and device.type == "cuda"
    # bfloat16 autocast keeps float32's exponent range, so no loss scaling is needed; the scaler
    # stays as a no-op hook for a float16 recipe.
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if use_amp else nullcontext
    calibrator = BatchNormCalibrator(built.splits.train, int(tc.calib_batches), 64, int(cfg.seed))
    probe = list(
        itertools.islice(
            iter(make_loader(built.splits.train, int(tc.batch_size), shuffle=False)), 4
        )
    )
    writer = SummaryWriter(str(out / "tb")) if ranks.main else None
    model = distributed.wrap(strategy, ranks, device)
    metrics: dict = {"epoch": start_epoch}
    end_epoch = int(tc.epochs)
    if tc.stop_after:
        end_epoch = min(end_epoch, start_epoch + int(tc.stop_after))
    global_step = start_epoch * steps
    if start_epoch >= end_epoch:
        say(
            f"nothing to train: the checkpoint has {start_epoch} epochs done and "
            f"trainer.epochs={tc.epochs}; raise trainer.epochs to train on"
        )
    for epoch in range(start_epoch, end_epoch):
        strategy.train()
        sampler.set_epoch(epoch)
        tic, seen, correct, loss_sum = time.time(), 0, 0, 0.0
        batches = itertools.islice(itertools.chain.from_iterable(itertools.repeat(loader)), steps)
        bar = tqdm(
            batches,
            total=steps,
            desc=f"epoch {epoch + 1}/{tc.epochs}",
            disable=not (tc.progress and ranks.main),
            leave=False,
        )
        for x, y in bar:
            # the whole batch on every rank alike (one generator state to checkpoint), then shard
            x, y = distributed.shard(augment(x.to(device)), y.to(device), ranks)
            if tc.channels_last and device.type == "cuda":
                x = x.to(memory_format=torch.channels_last)
            opt.zero_grad(set_to_none=True)
            for leaf in strategy.step_leaves():
                teacher = None
                for k, arch in enumerate(sampler.paths(leaf)):
                    with autocast():
                        logits = model(x, arch)
                        loss = _step_loss(logits, y, teacher if k else None, smoothing)
                    scaler.scale(loss).backward()
                    if k == 0:
                        loss_sum += loss.item() * len(y)
                        correct += (logits.argmax(1) == y).sum().item()
                        seen += len(y)
                        if sampler.distill:
                            teacher = logits.detach().float().softmax(-1)
            scaler.unscale_(opt)
            nn.utils.clip_grad_norm_(strategy.parameters(), float(tc.grad_clip))
            scaler.step(opt)
            scaler.update()
            if ema is not None:
                ema.update(strategy)
            global_step += 1
            if strategy.probe_every and global_step % strategy.probe_every == 0:
                strategy.probe(_split_context(cfg, probe, epoch, global_step, writer))
        sched.step()
        ctx = _split_context(cfg, probe, epoch + 1, global_step, writer)
        pairs = strategy.maybe_split(ctx)  # on every rank alike: same weights, batches and seed
        if pairs:
            strategy.to(device)
            opt, sched = _rebuild_optimizer(cfg, built, opt, sched, pairs)
            model = distributed.wrap(strategy, ranks, device)  # DDP over the grown parameters
            if ema is not None:
                ema.after_split(strategy, pairs)
        distributed.assert_in_sync(strategy, ranks, f"epoch {epoch + 1}", strategy.leaves)
        loss_sum, correct, seen = distributed.total([loss_sum, correct, seen], ranks, device)
        if not ranks.main:  # rank 0 evaluates, logs and writes; the others wait for it
            distributed.barrier(ranks)
            continue
        scored = strategy if ema is None else ema.module  # the weights a search will score
        val = built.splits.val
        metrics = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / max(seen, 1),
            "train_acc": 100.0 * correct / max(seen, 1),
            "train_samples": int(seen),  # images x sub-supernets trained, over all processes
            "val_acc_largest": _val_accuracy(
                scored, val, built.space.largest(), calibrator, device
            ),
            "val_acc_smallest": _val_accuracy(
                scored, val, built.space.smallest(), calibrator, device
            ),
            "num_supernets": strategy.num_supernets,
            "param_bytes": strategy.parameter_bytes(),
            "lr": opt.param_groups[0]["lr"],
            "epoch_seconds": time.time() - tic,
        }
        for key, value in metrics.items():
            if key != "epoch":
                writer.add_scalar(f"train/{key}", value, epoch + 1)
        save_checkpoint(
            ckpt_path,
            {
                "space": built.space.name,
                "config": config_to_save(cfg),
                "sharing": strategy.sharing_state(),
                "model": strategy.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "sampler": sampler.state_dict(),
                "epoch": epoch + 1,
                "metrics": metrics,
                "rng": {
                    "torch": torch.get_rng_state(),
                    "loader": generator.get_state(),
                    "augment": augment.get_state(),
                },
                **({} if ema is None else {"ema": ema.state_dict()}),
            },
        )
        distributed.barrier(ranks)
        tqdm.write(
            f"epoch {epoch + 1}/{tc.epochs}  loss {metrics['train_loss']:.3f}  "
            f"acc {metrics['train_acc']:.1f}%  val(largest) {metrics['val_acc_largest']:.1f}%  "
            f"val(smallest) {metrics['val_acc_smallest']:.1f}%  sub-supernets "
            f"{metrics['num_supernets']} ({metrics['param_bytes'] / 1e6:.2f} MB)  "
            f"{metrics['epoch_seconds']:.1f}s"
        )
    metrics["checkpoint"] = str(ckpt_path)
    if writer is not None:
        writer.close()
        tqdm.write(f"checkpoint: {ckpt_path}\nTensorBoard: tensorboard --logdir {out / 'tb'}")
    return metrics
