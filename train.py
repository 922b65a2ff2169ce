"""Train a weight-sharing supernet: ``python train.py [group=option ...] [key=value ...]``."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from supernet.cli import guard, register_all, user_errors


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
@user_errors
def main(cfg: DictConfig) -> dict:
    from supernet.training import train

    return train(cfg)


if __name__ == "__main__":
    register_all()
    guard(main, "train")
