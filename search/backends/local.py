"""Local backend: evaluations run in this process, one after another, with a progress bar."""

from __future__ import annotations

import sys
from collections.abc import Callable

from tqdm import tqdm

from search.study import Study
from search.tables import human
from supernet.arch import Arch


class LocalBackend:
    """Drives a study's ask/tell loop in this process until the study stops proposing (its
    ``n_trials`` budget of distinct archs spent, or the space used up).

    Ctrl-C (KeyboardInterrupt) fails the trial in progress and stops the loop; the study keeps the
    archs evaluated so far, so the pipeline still ranks and writes them. The progress bar shows the
    best feasible value of the ranking key (``study.objective.key``, in its direction)."""

    def __init__(self, progress: bool = True) -> None:
        self.progress = progress
        self.interrupted = False  # a run stopped by Ctrl-C

    def run(self, study: Study, evaluate: Callable[[Arch], dict]) -> None:
        total = max(0, study.n_trials - study.n_used())
        bar = tqdm(total=total, desc="search", disable=not self.progress, leave=False)
        done = 0
        best: list[dict] = []  # the best feasible record so far (one), for the progress bar
        proposal = None
        try:
            while (proposal := study.ask()) is not None:
                record = study.tell(proposal, evaluate(proposal.arch))
                proposal = None
                bar.update(1)
                if record is not None:
                    done += 1
                    fields = record.to_dict()
                    value = study.objective.best([*best, fields])
                    if value is not None and value == study.objective.best([fields]):
                        best = [fields]
                    bar.set_postfix(best=_fmt(value, study.objective.key))
        except KeyboardInterrupt:
            self.interrupted = True
            if proposal is not None:
                study.tell_error(proposal, "interrupted (KeyboardInterrupt)")
            bar.close()
            print(f"interrupted: keeping the {done} archs evaluated so far", file=sys.stderr)
        bar.close()


def _fmt(value: float | None, key: str) -> str:
    if value is None:
        return "-"  # nothing feasible yet
    return human(value) if key in ("params", "flops") else f"{value:.4g}"
