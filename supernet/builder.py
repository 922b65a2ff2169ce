"""Build the training-side objects from a config, and load a trained supernet from a checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from supernet.checkpoint import load_checkpoint
from supernet.data import Splits
from supernet.ema import apply_ema
from supernet.errors import SharenasError
from supernet.models import Macro
from supernet.sampling import PathSampler
from supernet.sharing.base import SharingStrategy
from supernet.spaces import build_space
from supernet.spaces.base import Space


@dataclass
class Built:
    space: Space
    splits: Splits
    macro: Macro
    strategy: SharingStrategy


def build(cfg: DictConfig) -> Built:
    """Space, data splits, macro skeleton and sharing strategy (with fresh weights) from ``cfg``."""
    space = build_space(cfg.space.name)
    splits: Splits = instantiate(cfg.data)
    macro = Macro(
        channels=cfg.space.macro.channels,
        cells_per_stage=cfg.space.macro.cells_per_stage,
        bn_affine=cfg.space.macro.get("bn_affine", True),  # checkpoints from before the key
        in_channels=splits.in_channels,
        num_classes=splits.num_classes,
    )
    strategy: SharingStrategy = instantiate(cfg.sharing, space=space, macro=macro)
    return Built(space, splits, macro, strategy)


def build_sampler(cfg: DictConfig, built: Built) -> PathSampler:
    """The path sampler, with the parameter count of each path as its cost (``cost_binned`` bins
    on it; every sampler needs it inside the cost leaves of ``costsplit``)."""
    kwargs: dict[str, Any] = {
        "space": built.space,
        "seed": int(cfg.seed),
        "cost_fn": built.strategy.param_count,
    }
    return instantiate(cfg.sampler, **kwargs)


def config_to_save(cfg: DictConfig) -> dict:
    """The config parts a checkpoint needs to rebuild its supernet (resolved, plain types)."""
    keep = ("seed", "space", "data", "sharing", "sampler", "trainer")
    full = OmegaConf.to_container(cfg, resolve=True)
    return {k: full[k] for k in keep if k in full}


def load_trained(
    path: str | Path, space: str | None = None, data_path: str | None = None, ema: bool = True
) -> tuple[Built, dict]:
    """Rebuild the strategy a checkpoint was trained with and load its weights and partition.
    ``data_path`` replaces the saved ``data.path`` of a dataset read from disk (moved files).
    A checkpoint trained with ``trainer.ema_decay`` loads its EMA weights unless ``ema=False``."""
    payload = load_checkpoint(path, space=space)
    cfg = OmegaConf.create(payload["config"])
    saved_path = cfg.data.get("path")
    if data_path is not None and saved_path is not None and str(data_path) != saved_path:
        print(f"data.path: reading {data_path} (the checkpoint was trained on {saved_path})")
        cfg.data.path = str(data_path)
    elif saved_path is not None and not Path(saved_path).expanduser().is_dir():
        raise SharenasError(
            f"the checkpoint's data.path {saved_path!r} is not a directory; if the files moved, "
            f"pass data={cfg.data.name} data.path=NEW_DIR"
        )
    built = build(cfg)
    built.strategy.load_sharing_state(payload["sharing"])
    built.strategy.load_state_dict(payload["model"])
    if ema and "ema" in payload:
        apply_ema(built.strategy, payload["ema"])
    built.strategy.eval()
    return built, payload
