"""Console scripts ``sharenas-train`` and ``sharenas-search``: ``train.py`` and ``search.py`` for an
installed package, reading the configs shipped inside it (``sharenas.config.conf_dir``)."""

from __future__ import annotations

from collections.abc import Callable

import hydra
from omegaconf import DictConfig

from search.cli import register_configs, search_main
from sharenas.config import conf_dir
from supernet.cli import guard, user_errors


def _entry(config_name: str, task: Callable[[DictConfig], object]) -> None:
    register_configs()  # the training and the search schemas
    conf = conf_dir()
    main = hydra.main(version_base="1.3", config_path=str(conf), config_name=config_name)
    guard(main(user_errors(task)), config_name, conf_dir=conf)


def _train(cfg: DictConfig) -> dict:
    from supernet.training import train as train_supernet

    return train_supernet(cfg)


def train() -> None:
    """``sharenas-train [group=option ...] [key=value ...]``"""
    _entry("train", _train)


def search() -> None:
    """``sharenas-search [supernet.checkpoint=PATH] [group=option ...] [key=value ...]``"""
    _entry("search", search_main)
