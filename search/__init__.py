"""sharenas search package: evaluation, searchers, backends, ranking, fidelity."""

from __future__ import annotations


def run(cfg, out_dir=None, overrides=None):  # noqa: ANN001 - lazy alias of search.pipeline.run
    """Train (or load) a supernet, search it, rank without retraining. See ``search.pipeline``."""
    from search.pipeline import run as _run

    return _run(cfg, out_dir, overrides=overrides)
