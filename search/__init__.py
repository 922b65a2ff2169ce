"""sharenas search package: evaluation, searchers, backends, ranking, fidelity."""
