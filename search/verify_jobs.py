"""The standalone trainings the verify stage needs: which archs still lack a result (in the run
directory's store or the study), the jobs that train them as worker processes or Ray tasks, and
the winner's weights when its result came from the study (which holds no tensors).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import fields

from search.tables import count
from search.verify_train import RayOptions, StandaloneJob, run_local, run_ray
from supernet.builder import Built

#: Test hook: after this many new results are stored, the process kills itself (SIGKILL).
KILL_AFTER_ENV = "SHARENAS_VERIFY_KILL_AFTER"
#: Prefix of the study user attributes that hold standalone results (a persistent study).
STUDY_ATTR = "verify"


def macro(built: Built) -> dict:
    return {f.name: getattr(built.macro, f.name) for f in fields(built.macro)}


def _kill_hook(finished: int) -> None:
    limit = os.environ.get(KILL_AFTER_ENV)
    if limit is not None and finished >= int(limit):
        print(
            f"verify: {KILL_AFTER_ENV}={limit}: killing this process", file=sys.stderr, flush=True
        )
        os.kill(os.getpid(), signal.SIGKILL)


def _jobs(vcfg, built, store, archs: list[str], seeds: tuple[int, ...]) -> list[StandaloneJob]:
    return [
        StandaloneJob(
            arch=arch,
            space=built.space.name,
            macro=macro(built),
            recipe=store.settings["recipe"],
            seeds=seeds,
            init=_inherited(built, arch) if vcfg.mode == "finetune" else None,
        )
        for arch in archs
    ]


def _train(vcfg, built, jobs, on_ray: bool, ray_address, on_result) -> str:
    """Run ``jobs`` as worker processes or Ray tasks; returns "local" or "ray"."""
    data = tuple((s.tensors[0], s.tensors[1]) for s in (built.splits.train, built.splits.val))
    use_ray = vcfg.backend == "ray" or (vcfg.backend == "auto" and on_ray)
    if use_ray:
        options = RayOptions(
            ray_address,
            int(vcfg.workers),
            float(vcfg.cpus_per_task),
            vcfg.gpus_per_task,
            int(vcfg.max_retries),
        )
        run_ray(jobs, data, options, on_result)
    else:
        run_local(jobs, data, int(vcfg.workers), on_result)
    return "ray" if use_ray else "local"


def train_missing(
    vcfg, built, picks, store, on_ray: bool, ray_address, also_store, earlier
) -> tuple[int, float, str]:
    """Train the picked archs that neither ``store`` nor the study (``earlier``) holds; returns
    (how many, seconds, "local" | "ray")."""
    archs = [r["arch"] for r, _ in picks]
    adopted = [a for a in archs if a not in store and a in earlier]
    for arch in adopted:  # results without weights: export retrains the winner's first seed
        store.adopt(earlier[arch])
    todo = [a for a in archs if a not in store]
    done = len(picks) - len(todo)
    if done:
        here = done - len(adopted)
        parts = [f"{here} in {store.path}" if here else "", f"{len(adopted)} in the study"]
        where = ", ".join(p for p in parts if p and not p.startswith("0 "))
        print(
            f"verify: {done} of {len(picks)} archs already trained ({where}); "
            f"training the other {len(todo)}",
            file=sys.stderr,
        )
    jobs = _jobs(vcfg, built, store, todo, tuple(store.settings["seeds"]))
    if todo and not done:  # say what the wait is for before the first result arrives
        top = sum(role == "top" for _, role in picks)
        seeds, epochs = len(store.settings["seeds"]), int(store.settings["recipe"]["epochs"])
        print(
            f"verify: training {count(len(todo), 'arch')} standalone ({top} top + "
            f"{len(picks) - top} control; {count(epochs, 'epoch')} x "
            f"{count(seeds, 'seed')} each); each result is printed as it finishes",
            file=sys.stderr,
            flush=True,
        )
    finished = 0

    def on_result(result: dict) -> None:
        nonlocal finished
        stored = store.add(result)
        if also_store is not None:  # the study's storage: key = settings digest and arch
            also_store(f"{STUDY_ATTR}:{store.digest}:{stored['arch']}", stored)
        finished += 1
        print(
            f"verify [{finished}/{len(jobs)}] {stored['standalone_acc']:6.2f}%  "
            f"{stored['seconds']:5.1f}s  {stored['arch']}",
            file=sys.stderr,
            flush=True,
        )
        _kill_hook(finished)

    tic = time.time()
    runner = _train(vcfg, built, jobs, on_ray, ray_address, on_result)
    return len(jobs), time.time() - tic, runner


def winner_weights(vcfg, built, store, arch: str, on_ray: bool, ray_address) -> float | None:
    """Give the winner trained weights when its result came from the study (which holds no
    tensors): train its first seed again, as verify did. Returns those weights' accuracy, or
    None when the run directory already had them."""
    if store.has_weights(arch):
        return None
    first = int(store.settings["seeds"][0])
    print(
        f"verify: training the winner again (seed {first}) for its weights: {arch}", file=sys.stderr
    )
    got: list[dict] = []
    jobs = _jobs(vcfg, built, store, [arch], (first,))
    _train(vcfg, built, jobs, on_ray, ray_address, got.append)
    store.put_weights(arch, got[0]["state_dict"])
    acc = float(got[0]["standalone_acc"])
    if acc != store.results[arch]["standalone_acc_per_seed"][0]:
        print(
            f"verify: retrained weights score {acc:.2f}%, the stored seed-{first} result "
            f"{store.results[arch]['standalone_acc_per_seed'][0]:.2f}% (training is not "
            f"bit-reproducible on this hardware); record.json gives the weights' own accuracy",
            file=sys.stderr,
        )
    return acc


def _inherited(built: Built, arch: str) -> dict:
    net = built.strategy.extract(built.space.parse(arch))
    return {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
