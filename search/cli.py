"""What ``search.py`` needs: every schema a search config uses, and the search entry point.

A search composes the training groups too (a search without a checkpoint trains one first), so
``register_configs`` stores the training schemas (``supernet.config``) beside the search ones.
"""

from __future__ import annotations

from omegaconf import DictConfig

from search.config import register_search_configs
from supernet.cli import guard, user_errors
from supernet.config import register_train_configs


def register_configs() -> None:
    """Register the training and the search structured-config schemas with Hydra's ConfigStore."""
    register_train_configs()
    register_search_configs()


def search_main(cfg: DictConfig) -> None:
    """The body of ``search.py``'s ``@hydra.main``: one process, then ``search.run(cfg)``. A search
    cut short by Ctrl-C ranks and writes what it evaluated, then exits with status 130 (the shell's
    code for SIGINT), so scripts can tell a partial search from a finished one."""
    from search.pipeline import run
    from supernet.distributed import launched_by_torchrun
    from supernet.errors import SharenasError

    if launched_by_torchrun():
        raise SharenasError(
            "search.py runs in one process (use backend=ray to spread a search); train under "
            "torchrun with train.py, then pass its supernet.checkpoint to search.py"
        )
    if run(cfg).get("interrupted"):  # Ctrl-C: results were written, but the search is partial
        raise SystemExit(130)


__all__ = ["guard", "register_configs", "search_main", "user_errors"]
