"""Setting up a supernet training run: the objects one run is made of, before its first epoch.

``set_up`` builds them from the config; ``supernet.training`` resumes them from a checkpoint and
trains them epoch by epoch.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from supernet import distributed
from supernet.augment import BatchAugment
from supernet.bn import BatchNormCalibrator
from supernet.builder import Built, build, build_sampler
from supernet.data import make_loader
from supernet.derived import AUTO, DATA_EPOCHS, EMA_SPAN, crop_pad_for, ema_decay_for
from supernet.distributed import Ranks
from supernet.ema import WeightEMA, init_share
from supernet.errors import SharenasError
from supernet.optim import build_optimizer, build_scheduler
from supernet.sampling import PathSampler
from supernet.sharing.base import SharingStrategy, SplitContext
from supernet.threads import apply_threads, local_world_size

#: ``step_hook(epoch, step, loss) -> loss``: called with each path's loss of each optimizer step
#: (epoch and step counted from 1); what it returns is trained on. Tests inject faults with it (a
#: NaN loss, a kill at a known step); None in normal runs.
StepHook = Callable[[int, int, torch.Tensor], torch.Tensor]


@dataclass
class TrainRun:
    """The objects of one training run; the phases of ``supernet.training`` update them."""

    cfg: DictConfig
    out: Path
    ckpt_path: Path
    ranks: Ranks
    device: torch.device
    say: Callable[..., None]
    built: Built
    sampler: PathSampler
    loader: DataLoader
    augment: BatchAugment
    steps: int  # optimizer steps per epoch
    opt: torch.optim.Optimizer
    sched: Any
    calibrator: BatchNormCalibrator
    probe: list  # fixed batches that splits and probes measure gradients on
    writer: SummaryWriter | None = None
    model: nn.Module | None = None  # the strategy, DDP-wrapped under torchrun
    ema: WeightEMA | None = None
    autocast: Callable[[], Any] = nullcontext
    start_epoch: int = 0
    global_step: int = 0
    step_hook: StepHook | None = None
    rng: dict = field(default_factory=dict)  # generator states to restore once set up

    @property
    def strategy(self) -> SharingStrategy:
        return self.built.strategy

    @property
    def generator(self) -> torch.Generator:
        """The training loader's shuffling generator (its state is checkpointed)."""
        return self.loader.sampler.sampler.generator


def set_up(cfg: DictConfig, out: Path, ranks: Ranks, device: torch.device) -> TrainRun:
    """Every object of a fresh run, from ``cfg`` (threads and torch's seed first)."""
    tc = cfg.trainer
    say = print if ranks.main else _silent
    # torchrun on CPU: the processes of this machine share its CPUs
    apply_threads(tc.num_threads, workers=local_world_size(), say=say)
    torch.manual_seed(int(cfg.seed))
    built = build(cfg)
    _warn_late_splits(built.strategy, int(tc.epochs))
    sampler = build_sampler(cfg, built)
    built.strategy.to(device)
    loader = make_loader(
        built.splits.train, int(tc.batch_size), shuffle=True, seed=int(cfg.seed), drop_last=True
    )
    if len(loader) == 0:  # drop_last: not one whole batch (and the epoch loop would never end)
        raise SharenasError(
            f"the training split has {len(built.splits.train)} images, fewer than "
            f"trainer.batch_size={tc.batch_size}; lower trainer.batch_size or use more data "
            "(data.limit?)"
        )
    opt = build_optimizer(tc, built.strategy)
    probe_loader = make_loader(built.splits.train, int(tc.batch_size), shuffle=False)
    _say_epochs(cfg, say)
    return TrainRun(
        cfg=cfg,
        out=out,
        ckpt_path=out / tc.checkpoint,
        ranks=ranks,
        device=device,
        say=say,
        built=built,
        sampler=sampler,
        loader=loader,
        augment=_batch_augment(cfg, built, say),
        steps=int(tc.steps_per_epoch or len(loader)),
        opt=opt,
        sched=build_scheduler(tc, opt),
        calibrator=BatchNormCalibrator(
            built.splits.train, int(tc.calib_batches), 64, int(cfg.seed)
        ),
        probe=list(itertools.islice(iter(probe_loader), 4)),
    )


def finish_set_up(run: TrainRun, payload_ema: dict | None, resumed: bool) -> None:
    """After resume: memory format, EMA, autocast, writer, DDP wrapper; then the torch RNG state
    of the checkpoint is restored last, so nothing of the set-up draws from it (a resumed run's RNG
    state then equals an uninterrupted run's)."""
    tc, device = run.cfg.trainer, run.device
    if tc.channels_last and device.type == "cuda":
        run.strategy.to(memory_format=torch.channels_last)
    # rank 0 alone evaluates and saves, so it alone keeps the average
    if run.ranks.main:
        run.ema = _weight_ema(tc, run.strategy, payload_ema, resumed, run.steps, run.say)
    if bool(tc.amp) and device.type == "cuda":
        # bfloat16 keeps float32's exponent range, so no loss scaling is needed
        run.autocast = lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    run.writer = SummaryWriter(str(run.out / "tb")) if run.ranks.main else None
    run.model = distributed.wrap(run.strategy, run.ranks, device)
    run.global_step = run.start_epoch * run.steps
    if "torch" in run.rng:
        torch.set_rng_state(run.rng["torch"])


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


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SharenasError(f"trainer.device={name!r} but CUDA is not available; use trainer=cpu")
    return torch.device(name)


def _silent(*args: object, **kwargs: object) -> None:
    """``print`` for the processes that are not rank 0."""


def _say_epochs(cfg: DictConfig, say) -> None:
    """Print ``trainer.epochs`` when the CPU trainer derived it from the dataset."""
    raw = OmegaConf.to_container(cfg.trainer, resolve=False).get("epochs")
    if isinstance(raw, str) and raw.startswith("${epochs_for:"):
        name = cfg.data.name
        why = (
            "the budget the default recipe was benchmarked at"
            if name in DATA_EPOCHS
            else "no benchmark of this dataset"
        )
        say(f"trainer.epochs={cfg.trainer.epochs} (the CPU default for data={name}: {why})")


def _batch_augment(cfg: DictConfig, built: Built, say) -> BatchAugment:
    """The training batches' augmentation (``trainer.augment``), checked against the data."""
    crop_pad = cfg.trainer.augment.crop_pad
    if crop_pad == AUTO:
        crop_pad = crop_pad_for(built.splits.image_size)
        say(
            f"trainer.augment.crop_pad=auto -> {crop_pad} (random shifts of up to an eighth of "
            f"the {built.splits.image_size}-pixel image side)"
        )
    augment = BatchAugment(
        int(crop_pad),
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


def _weight_ema(tc: DictConfig, strategy: SharingStrategy, saved, resumed: bool, steps: int, say):
    """The EMA of the weights when ``trainer.ema_decay`` is set (``supernet.ema``), continued from
    a resumed checkpoint's (``saved``); warns when the run is too short for the decay."""
    if tc.ema_decay is None:
        if saved is not None:
            say(
                "resume: trainer.ema_decay=null drops the checkpoint's EMA; searches will score "
                "the raw weights"
            )
        return None
    total = int(tc.epochs) * steps
    decay = tc.ema_decay
    if decay == AUTO:
        decay = ema_decay_for(total)
        say(
            f"trainer.ema_decay=auto -> {decay} (time constant {EMA_SPAN:.0%} of the run's "
            f"{total} optimizer steps)"
        )
    ema = WeightEMA(strategy, float(decay))
    # auto is the shortest time constant that averages at all (>= 2 steps) on a very short run
    if tc.ema_decay != AUTO and (share := init_share(ema.decay, total)) > 0.1:
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
    elif resumed:
        say("resume: the checkpoint has no EMA of its weights; the average starts now")
    return ema


def split_context(cfg: DictConfig, probe: list, epoch: int, step: int, writer) -> SplitContext:
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
