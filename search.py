"""Search a trained supernet (training one first if none is given).

python search.py [supernet.checkpoint=PATH] [searcher=optuna|nsga2|random|exhaustive|evolution]
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from search.cli import guard, register_configs, search_main, user_errors


@hydra.main(version_base="1.3", config_path="conf", config_name="search")
@user_errors
def main(cfg: DictConfig) -> None:
    search_main(cfg)


if __name__ == "__main__":
    register_configs()
    guard(main, "search")
