"""Train a weight-sharing supernet: ``python train.py [group=option ...] [key=value ...]``."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from supernet.cli import guard, user_errors
from supernet.config import register_train_configs


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
@user_errors
def main(cfg: DictConfig) -> dict:
    from supernet.training import train

    return train(cfg)


if __name__ == "__main__":
    register_train_configs()
    guard(main, "train")
