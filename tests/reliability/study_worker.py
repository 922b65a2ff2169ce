"""One search process on a shared study, for the storage reliability tests.

``python -m tests.reliability.study_worker STORAGE LOG N_TRIALS [--kill-at K]`` drives a seeded
random search (every process proposes the same archs, so they collide as often as they can) with a
synthetic evaluator. Each arch it evaluates is appended to ``LOG`` before it is told. With
``--kill-at K`` the process kills itself with SIGKILL while evaluating its K-th arch. With
``--together DIR N`` it waits, once its study is open, until N processes have said so in DIR, so
that processes which started at different speeds search at the same time."""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import time
from pathlib import Path

from search.backends import LocalBackend
from search.searchers import RandomSearcher
from search.study import Study
from supernet.arch import Arch
from supernet.spaces import build_space


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("storage")
    parser.add_argument("log", type=Path)
    parser.add_argument("n_trials", type=int)
    parser.add_argument("--kill-at", type=int, default=None)
    parser.add_argument("--together", nargs=2, default=None, metavar=("DIR", "N"))
    args = parser.parse_args()
    evaluated: list[str] = []

    def evaluate(arch: Arch) -> dict:
        evaluated.append(str(arch))
        with args.log.open("a") as f:
            f.write(f"{arch}\n")
        if len(evaluated) == args.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(0.01)  # let the processes interleave; nothing depends on it
        noise = int(hashlib.sha256(str(arch).encode()).hexdigest()[:8], 16) / 2**32
        return {"arch": str(arch), "val_acc": noise, "val_loss": 1 - noise, "params": 1}

    space = build_space("nb201")
    searcher = RandomSearcher(
        space, n_trials=args.n_trials, storage=args.storage, study_name="shared"
    )
    study = Study(searcher)
    if args.together:
        _wait_for_peers(Path(args.together[0]), int(args.together[1]))
    try:
        LocalBackend(progress=False).run(study, evaluate)
    finally:
        study.close()


def _wait_for_peers(folder: Path, n: int, timeout: float = 120.0) -> None:
    """Say this process is ready in ``folder``, then wait until ``n`` processes have."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / str(os.getpid())).touch()
    deadline = time.monotonic() + timeout
    while sum(1 for _ in folder.iterdir()) < n and time.monotonic() < deadline:
        time.sleep(0.05)


if __name__ == "__main__":
    main()
