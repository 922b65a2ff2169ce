"""The Python API: train, search, and a loaded supernet that ranks and extracts given archs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from torch import nn

from sharenas.config import compose, default_out_dir
from supernet.arch import Arch
from supernet.spaces.base import Space

ArchLike = str | Mapping[str, str]


def train(overrides: Sequence[str] = (), out_dir: str | Path | None = None) -> dict:
    """Train a supernet as ``sharenas-train <overrides>`` does; returns its metrics, including
    ``"checkpoint"``, the path of the written ``supernet.pt``. ``out_dir`` defaults to the
    overrides' ``hydra.run.dir``, else ``outputs/<experiment>/train/<date_time>``."""
    from supernet.training import train as train_supernet

    cfg = compose("train", overrides)
    return train_supernet(cfg, out_dir=out_dir or default_out_dir(cfg, "train", overrides))


def search(overrides: Sequence[str] = (), out_dir: str | Path | None = None) -> dict:
    """Search as ``sharenas-search <overrides>`` does (training a supernet first unless
    ``supernet.checkpoint=PATH`` is given); returns ``{"records", "leaderboard", "pareto", "paths",
    "checkpoint"}``. ``out_dir`` defaults to the overrides' ``hydra.run.dir``, else
    ``outputs/<experiment>/search/<date_time>``."""
    from search.pipeline import run

    cfg = compose("search", overrides)
    return run(cfg, out_dir or default_out_dir(cfg, "search", overrides), overrides=overrides)


class LoadedSupernet:
    """A trained supernet read from its checkpoint: its ``space``, each arch's standalone network
    (``extract``) and scores with inherited weights after BN recalibration (``score``, ``rank``),
    as a search evaluates them; nothing is retrained."""

    def __init__(self, built, evaluator) -> None:  # noqa: ANN001 - built by sharenas.load
        self.built = built
        self.evaluator = evaluator

    @property
    def space(self) -> Space:
        return self.built.space

    def arch(self, arch: ArchLike) -> Arch:
        """``arch`` checked against the space (an error names the bad decision and the choices)."""
        return self.space.validate(arch)

    def extract(self, arch: ArchLike) -> nn.Module:
        """The standalone network of ``arch``: copies of its inherited weights, BN recalibrated,
        in eval mode; its output equals the supernet's on that path."""
        return self.evaluator.calibrated(self.arch(arch))

    def score(self, arch: ArchLike) -> dict:
        """The evaluation record of ``arch`` (val_acc %, val_loss, params, flops, ...) plus its
        ``canonical`` form (equivalent archs share it)."""
        checked = self.arch(arch)
        return {**self.evaluator(checked), "canonical": self.space.canonical(checked)}

    def rank(self, archs: Iterable[ArchLike], key: str = "score") -> list[dict]:
        """Score each arch once and return the records best first by ``key`` (default ``score``,
        the estimator's value; higher is better for it and val_acc, lower for the losses and
        costs), each with a 1-based ``rank``."""
        from search.objective import KEY_DIRECTIONS
        from search.ranking import leaderboard
        from supernet.errors import SharenasError

        if key not in KEY_DIRECTIONS:
            raise SharenasError(f"unknown key {key!r}; allowed: {', '.join(KEY_DIRECTIONS)}")
        unique = list(dict.fromkeys(self.arch(a) for a in archs))
        records = [self.score(a) for a in unique]
        return leaderboard(records, key=key, descending=KEY_DIRECTIONS[key] == "max")


def load(
    checkpoint: str | Path,
    *,
    ema: bool = True,
    device: str = "cpu",
    calib_batches: int | str = "auto",
    count_flops: bool = True,
    seed: int = 0,
    data_path: str | None = None,
    estimator: str = "auto",
) -> LoadedSupernet:
    """Load a ``supernet.pt`` (``torch.load(weights_only=True)``: a checkpoint never runs code)
    with the data it was trained on, ready to rank and extract archs. ``data_path`` replaces
    the saved path of a dataset read from disk that moved. ``estimator`` and ``calib_batches``
    are ``evaluator.estimator`` and ``evaluator.calib_batches`` of ``python search.py``, with the
    same defaults: the benchmark's estimator for the checkpoint's space (printed)."""
    from search.cli import register_configs
    from search.estimators import resolve_estimator
    from search.evaluate import Evaluator, initial_for
    from supernet.builder import load_trained

    register_configs()
    built, state = load_trained(checkpoint, data_path=data_path, ema=ema)
    estimator = resolve_estimator(estimator, built.space.name)  # auto: printed, once
    initial = initial_for(estimator, state.config)  # the angle: the supernet before training
    evaluator = Evaluator(
        built,
        calib_batches=calib_batches,
        count_flops=count_flops,
        seed=seed,
        device=device,
        estimator=estimator,
        initial=initial,
    )
    return LoadedSupernet(built, evaluator)
