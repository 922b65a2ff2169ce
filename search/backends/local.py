"""Local backend: evaluations run in this process, one after another, with a progress bar."""

from __future__ import annotations

import sys
from collections.abc import Callable

from tqdm import tqdm

from search.objective import Objective
from search.searchers.base import Searcher
from search.tables import human
from supernet.arch import Arch


class LocalBackend:
    """Drives a searcher's ask/tell loop until ``n_trials`` *distinct* archs are evaluated.

    A proposal already evaluated is answered from memory (the searcher is told the same values) and
    does not count as a new trial; after ``20 * n_trials`` proposals the loop stops regardless.
    Ctrl-C (KeyboardInterrupt) stops the loop and returns the archs evaluated so far, so the
    pipeline still ranks and writes them. The progress bar shows the best feasible value of the
    objective's ranking key (``objective.key``, in its direction). Searchers are told each whole
    record too, so a persistent Optuna study stores it and a resumed search can rank it.
    """

    #: The searcher's own ask/tell drives the search, so its persistent storage is used.
    uses_searcher_storage = True

    def __init__(self, progress: bool = True) -> None:
        self.progress = progress

    def run(
        self,
        searcher: Searcher,
        evaluate: Callable[[Arch], dict],
        objective: Objective,
        n_trials: int,
    ) -> list[dict]:
        records: dict[str, dict] = {}
        bar = tqdm(total=n_trials, desc="search", disable=not self.progress, leave=False)
        try:
            self._loop(searcher, evaluate, objective, n_trials, records, bar)
        except KeyboardInterrupt:
            bar.close()
            print(
                f"interrupted: keeping the {len(records)} archs evaluated so far", file=sys.stderr
            )
        bar.close()
        return list(records.values())

    @staticmethod
    def _loop(
        searcher: Searcher,
        evaluate: Callable[[Arch], dict],
        objective: Objective,
        n_trials: int,
        records: dict[str, dict],
        bar: tqdm,
    ) -> None:
        for _ in range(20 * n_trials + 100):
            if len(records) >= n_trials:
                break
            proposal = searcher.ask()
            if proposal is None:  # the searcher has nothing left (exhausted space)
                break
            key = str(proposal.arch)
            if key not in records:
                record = evaluate(proposal.arch)
                record["trial"] = proposal.trial
                records[key] = record
                bar.update(1)
                best = objective.best(records.values())
                bar.set_postfix(best=_fmt(best, objective.key))
            record = records[key]
            values, constraints = objective.values(record), objective.constraints(record)
            searcher.tell(proposal, values, constraints, record=record)


def _fmt(value: float | None, key: str) -> str:
    if value is None:
        return "-"  # nothing feasible yet
    return human(value) if key in ("params", "flops") else f"{value:.4g}"
