"""Search a trained supernet (training one first if none is given).

python search.py [supernet.checkpoint=PATH] [searcher=optuna|nsga2|random|exhaustive|evolution]
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from supernet.cli import guard, register_all, user_errors


@hydra.main(version_base="1.3", config_path="conf", config_name="search")
@user_errors
def main(cfg: DictConfig) -> None:
    import search
    from supernet.distributed import launched_by_torchrun
    from supernet.errors import SharenasError

    if launched_by_torchrun():
        raise SharenasError(
            "search.py runs in one process (use backend=ray to spread a search); train under "
            "torchrun with train.py, then pass its supernet.checkpoint to search.py"
        )
    search.run(cfg)


if __name__ == "__main__":
    register_all()
    guard(main, "search")
