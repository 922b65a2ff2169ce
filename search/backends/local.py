"""Local backend: evaluations run in this process, one after another, with a progress bar."""

from __future__ import annotations

from collections.abc import Callable

from tqdm import tqdm

from search.objective import Objective
from search.searchers.base import Searcher
from supernet.arch import Arch


class LocalBackend:
    """Drives a searcher's ask/tell loop until ``n_trials`` *distinct* archs are evaluated.

    A proposal already evaluated is answered from memory (the searcher is told the same values) and
    does not count as a new trial; after ``20 * n_trials`` proposals the loop stops regardless.
    """

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
                bar.set_postfix(best=f"{max(r['val_acc'] for r in records.values()):.2f}")
            record = records[key]
            searcher.tell(proposal, objective.values(record), objective.constraints(record))
        bar.close()
        return list(records.values())
