"""Structured-config schemas for the training config groups, and run-directory helpers.

Each group option's YAML starts from its schema (``defaults: [/_schema_<group>@_here_, _self_]``,
a root config, so not an option of the group), so a misspelt key
or a wrong type fails at start-up with Hydra's message naming the key.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from supernet.derived import epochs_for, half, or_auto
from supernet.errors import SharenasError, check_int
from supernet.file_config import config_to_file
from supernet.optim import check_optim_config
from supernet.schema import at_least, check_config, checked, fraction, greater_than, optional
from supernet.threads import check_threads


def _threads(key: str, value: Any) -> int | None:
    return check_threads(value)  # names trainer.num_threads itself


#: torch, NumPy and ``random`` all take seeds in this range (torch's generators stop at 2**64 - 1,
#: NumPy's legacy ones at 2**32 - 1); seeds derived by adding the epoch stay inside it.
MAX_SEED = 2**32 - 1


def check_seed(label: str, value: object) -> int:
    """A seed as an int in [0, MAX_SEED], else one line naming ``label`` and the value."""
    seed = check_int(label, value, 0)
    if seed > MAX_SEED:
        raise SharenasError(f"{label} must be an integer in [0, {MAX_SEED}], got {value!r}")
    return seed


@dataclass
class RunConf:
    """The root keys of ``train.yaml`` and ``search.yaml`` that no group holds."""

    seed: int = checked(0, check_seed)  # every source of randomness derives from this
    experiment: str = "default"  # names the output folder


@dataclass
class MacroConf:
    channels: int = checked(16, at_least(1))  # C of the first stage; doubled at each reduction
    cells_per_stage: int = checked(1, at_least(1))  # N cells per stage (NB201 uses 5)
    bn_affine: bool = True  # learnable BN scale/shift in cells and reduction blocks


@dataclass
class SpaceConf:
    name: str = "nb201"  # a registered space (supernet.spaces.list_spaces())
    macro: MacroConf = field(default_factory=MacroConf)


@dataclass
class DataConf:
    _target_: str = "supernet.data.load_splits"
    name: str = "digits"  # digits | mnist5k (embedded, no download) | imagefolder | cifar10
    val_fraction: float = 0.2  # ranking split
    test_fraction: float = 0.2  # ground-truth split, never used by training or ranking
    pool: int = 1  # average-pool factor (mnist5k: 2 gives 14x14)
    seed: int = 0  # split seed, independent of the training seed
    limit: Any = None  # keep a seeded subset of this many images (None: all)


@dataclass
class DataPathConf(DataConf):
    path: Any = None  # the dataset's directory on local disk (required)


@dataclass
class DataFolderConf(DataPathConf):
    image_size: int = 32  # every image is resized to image_size x image_size
    channels: int = 3  # 3: RGB, 1: grayscale


@dataclass
class AugmentConf:
    # random shift: pad by this many pixels and crop back (0: off; auto: an eighth of the image
    # side, supernet.derived)
    crop_pad: Any = checked(0, or_auto(at_least(0), "an integer >= 0"))
    hflip: bool = False  # mirror each image with probability 1/2 (not for digits)


@dataclass
class TrainerConf:
    epochs: int = checked(5, at_least(1))
    batch_size: int = checked(64, at_least(1))
    # fixed optimizer steps per epoch (fair budgets); None = one pass
    steps_per_epoch: Any = checked(None, optional(at_least(1)))
    device: str = "cpu"  # cpu | cuda | auto
    amp: bool = False  # bfloat16/float16 autocast on CUDA only
    channels_last: bool = False  # CUDA memory format
    grad_clip: float = checked(5.0, greater_than(0))
    resume: bool = False  # continue from <run dir>/<checkpoint> if it exists
    overwrite: bool = False  # replace an existing <run dir>/<checkpoint> (else: refused)
    # run at most this many epochs in this invocation (time slices)
    stop_after: Any = checked(None, optional(at_least(1)))
    checkpoint: str = "supernet.pt"  # file name inside the run directory
    # CPU threads of train, search, verify; auto: supernet.threads
    num_threads: Any = checked("auto", _threads)
    progress: bool = True  # tqdm progress bar
    calib_batches: int = checked(4, at_least(1))  # BN recalibration batches for val accuracy
    # e.g. 0.998: score archs with an EMA of the weights (supernet.ema); auto: from the run's
    # optimizer steps (supernet.derived)
    ema_decay: Any = checked(
        None,
        optional(or_auto(fraction("e.g. 0.998, or null for no EMA"), "a number in (0, 1), null")),
    )
    # of the training loss, in [0, 1); scoring uses plain CE
    label_smoothing: float = checked(0.0, fraction("e.g. 0.1, or 0 for none", zero_is_off=True))
    augment: AugmentConf = field(default_factory=AugmentConf)  # supernet.augment
    optimizer: Any = None  # _target_ + _partial_: true (called with the parameters)
    scheduler: Any = (
        None  # _target_ + _partial_: true (called with the optimizer), stepped per epoch
    )


#: Config groups a checkpoint fixes: a search with a checkpoint uses the checkpoint's values, and
#: a resumed training run must use them.
CHECKPOINT_GROUPS = ("space", "data", "sharing", "sampler")


def _flat(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, Mapping):
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: node}


def checkpoint_config_diff(cfg: DictConfig, saved: Mapping[str, Any]) -> dict[str, list[str]]:
    """Group -> ["key: ours vs checkpoint's", ...] for the groups of ``CHECKPOINT_GROUPS`` whose
    resolved values differ from the config saved in a checkpoint (keys present in both)."""
    diffs: dict[str, list[str]] = {}
    for group in CHECKPOINT_GROUPS:
        if group not in cfg or not isinstance(saved.get(group), Mapping):
            continue
        stored = config_to_file({group: OmegaConf.to_container(cfg[group], resolve=True)})
        ours = _flat(stored[group])  # the stored form: names, not code
        theirs = _flat(saved[group])
        keys = sorted(k for k in set(ours) & set(theirs) if ours[k] != theirs[k])
        if keys:
            diffs[group] = [f"{group}.{k}={ours[k]!r} (checkpoint: {theirs[k]!r})" for k in keys]
    return diffs


def check_train_config(cfg: DictConfig) -> None:
    """Every check of the training schemas (``supernet.schema``: each names its key and value),
    before anything is built or trained."""
    for prefix, schema in TRAIN_SCHEMAS.items():
        check_config(cfg[prefix] if prefix else cfg, schema, prefix)
    if "seed" in cfg.data:
        check_seed("data.seed", cfg.data.seed)
    check_optim_config(cfg.trainer)
    groups = [g for g in ("data", "sharing", "sampler", "trainer") if g in cfg]
    config_to_file({g: OmegaConf.to_container(cfg[g], resolve=True) for g in groups})


#: Where each training schema sits in a composed config ("" for the root).
TRAIN_SCHEMAS: dict[str, type] = {"": RunConf, "space": SpaceConf, "trainer": TrainerConf}


def program(name: str) -> str:
    """How a user runs the script ``name`` ("train", "search") in this process's way:
    ``sharenas-search`` under the installed console scripts, else ``python search.py``."""
    if Path(sys.argv[0]).name.startswith("sharenas-"):
        return f"sharenas-{name}"
    return f"python {name}.py"


def register_train_configs() -> None:
    """Store the training schemas as root configs (not options of the groups they check, so
    ``--help`` and tab completion list only real options); a group option extends its schema with
    ``defaults: [/_schema_<group>@_here_, _self_]``."""
    if not OmegaConf.has_resolver("half"):  # ${half:${trainer.epochs}}: the middle epoch
        OmegaConf.register_new_resolver("half", half)
    if not OmegaConf.has_resolver("epochs_for"):  # ${epochs_for:${data.name}}: the CPU default
        OmegaConf.register_new_resolver("epochs_for", epochs_for)
    if not OmegaConf.has_resolver("program"):  # ${program:search}: how --help names the script
        OmegaConf.register_new_resolver("program", program)
    cs = ConfigStore.instance()
    cs.store(name="_schema_space", node=SpaceConf)
    cs.store(name="_schema_data", node=DataConf)
    cs.store(name="_schema_data_path", node=DataPathConf)
    cs.store(name="_schema_data_folder", node=DataFolderConf)
    cs.store(name="_schema_trainer", node=TrainerConf)


def run_dir(out_dir: str | Path | None = None) -> Path:
    """The run directory: ``out_dir`` if given, else Hydra's output dir, else the cwd."""
    if out_dir is not None:
        return Path(out_dir)
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    return Path.cwd()
