"""Verify stage: train the leaderboard's top archs and a random control sample standalone, and
tell the user how far the supernet's ranking agrees with standalone training on their data.

Standalone nets come from the space's own supernet (any registered space) and are trained with
the benchmark ground truth's trainer (``supernet.standalone``), from scratch or from the weights
the arch inherits (``verify.mode=finetune``), in worker processes or as Ray tasks
(``search.verify_train``). Every result is stored as it finishes (``search.verify_store``), so a
killed verify resumes without retraining. Archs are compared on the validation split; the test
split is read once, for the exported winner's record.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from search.verify_report import agreement_report, format_block
from search.verify_store import StandaloneStore, data_digest, from_study
from search.verify_train import RayOptions, StandaloneJob, build_net, run_local, run_ray
from supernet.builder import Built
from supernet.errors import SharenasError, check_int
from supernet.fileio import write_atomic
from supernet.standalone import StandaloneRecipe

MODES = ("scratch", "finetune")
BACKENDS = ("auto", "local", "ray")
#: Test hook: after this many new results are stored, the process kills itself (SIGKILL).
KILL_AFTER_ENV = "SHARENAS_VERIFY_KILL_AFTER"
#: Prefix of the study user attributes that hold standalone results (a persistent study).
STUDY_ATTR = "verify"


@dataclass
class Verified:
    """The verify stage's outcome: one row per verified arch, the report, the stored results."""

    rows: list[dict]
    report: dict
    block: str
    store: StandaloneStore
    mode: str

    @property
    def best(self) -> dict:
        return next(r for r in self.rows if r["arch"] == self.report["best"]["arch"])


def check_verify(vcfg: DictConfig, planned: int) -> None:
    """One line per bad value, before anything is trained. ``planned``: archs the search will
    evaluate at most (``top_k`` cannot exceed it)."""
    if not vcfg.enabled:
        return
    top_k = check_int("verify.top_k", vcfg.top_k, 1)
    if top_k > planned:
        raise SharenasError(
            f"verify.top_k={top_k} is larger than the leaderboard ({planned} archs at most); "
            f"use verify.top_k <= {planned} or search more archs"
        )
    check_int("verify.control", vcfg.control, 0)
    check_int("verify.workers", vcfg.workers, 1)
    check_int("verify.max_retries", vcfg.max_retries, 0)
    check_int("verify.bootstrap", vcfg.bootstrap, 0)
    for name, allowed in (("mode", MODES), ("backend", BACKENDS)):
        if vcfg[name] not in allowed:
            raise SharenasError(
                f"unknown verify.{name} {vcfg[name]!r}; allowed: {', '.join(allowed)}"
            )
    if not vcfg.seeds:
        raise SharenasError("verify.seeds is empty; give at least one seed, e.g. verify.seeds=[0]")
    for seed in vcfg.seeds:
        check_int("verify.seeds[]", seed, 0)
    recipe(vcfg)


def recipe(vcfg: DictConfig) -> StandaloneRecipe:
    """``verify.recipe`` as the trainer's recipe; an unknown key or a bad value in one line."""
    given = OmegaConf.to_container(vcfg.recipe, resolve=True)
    allowed = [f.name for f in fields(StandaloneRecipe)]
    for key in given:
        if key not in allowed:
            raise SharenasError(f"unknown verify.recipe key {key!r}; allowed: {', '.join(allowed)}")
    for key in ("epochs", "batch_size"):
        check_int(f"verify.recipe.{key}", given.get(key, 1), 1)
    checks = {"lr": (0, math.inf, False), "momentum": (0, 1, True), "weight_decay": (0, 1, True)}
    for key, (low, high, closed) in checks.items():
        value = given.get(key)
        ok = isinstance(value, int | float) and (low <= value if closed else low < value)
        if value is not None and not (ok and value < high):
            bound = f"{'>=' if closed else '>'} {low}" + (f" and < {high}" if high < 9e9 else "")
            raise SharenasError(f"verify.recipe.{key} must be a number {bound}, got {value!r}")
    return StandaloneRecipe(**given)


def distinct(ranked: list[dict]) -> list[dict]:
    """The best-ranked record of each network: records with the same ``canonical`` form
    (``space.canonical``, e.g. NB201 cells that differ only on dead edges) compute the same
    function, so training more than one of them would measure one network twice."""
    seen: set[str] = set()
    firsts = []
    for record in ranked:
        network = str(record.get("canonical") or record["arch"])
        if network not in seen:
            seen.add(network)
            firsts.append(record)
    return firsts


def select(ranked: list[dict], top_k: int, control: int, seed: int) -> list[tuple[dict, str]]:
    """The leaderboard's ``top_k`` best distinct networks ("top") and ``control`` others drawn
    without replacement, by ``seed``, from the other evaluated networks ("control"). Each network
    is represented by its best-ranked arch (``distinct``)."""
    networks = distinct(ranked)
    if top_k > len(networks):
        same = len(ranked) - len(networks)
        also = f" ({len(ranked)} archs, {same} of them the same network as a better one)"
        raise SharenasError(
            f"verify.top_k={top_k} is larger than the leaderboard's {len(networks)} distinct "
            f"networks{also if same else ''}; use verify.top_k <= {len(networks)}"
        )
    top = networks[:top_k]
    rest = sorted(networks[top_k:], key=lambda r: r["arch"])
    if control > len(rest):
        print(
            f"verify: only {len(rest)} networks outside the top {top_k} to draw the "
            f"{control} controls from: taking them all",
            file=sys.stderr,
        )
    idx = np.random.default_rng(seed).permutation(len(rest))[: min(control, len(rest))]
    return [(r, "top") for r in top] + [(rest[i], "control") for i in sorted(idx)]


def _settings(vcfg: DictConfig, built: Built, checkpoint: str | None) -> dict[str, Any]:
    splits = built.splits
    data = [*splits.train.tensors, *splits.val.tensors]
    settings = {
        "mode": vcfg.mode,
        "recipe": recipe(vcfg).to_dict(),
        "seeds": [int(s) for s in vcfg.seeds],
        "space": built.space.name,
        "macro": _macro(built),
        "data": {"name": splits.name, "digest": data_digest(data)},
    }
    if vcfg.mode == "finetune":  # the starting weights come from this supernet
        settings["supernet"] = str(checkpoint)
    return settings


def _macro(built: Built) -> dict:
    return {f.name: getattr(built.macro, f.name) for f in fields(built.macro)}


def _kill_hook(count: int) -> None:
    limit = os.environ.get(KILL_AFTER_ENV)
    if limit is not None and count >= int(limit):
        print(
            f"verify: {KILL_AFTER_ENV}={limit}: killing this process", file=sys.stderr, flush=True
        )
        os.kill(os.getpid(), signal.SIGKILL)


def _jobs(vcfg, built, store, archs: list[str], seeds: tuple[int, ...]) -> list[StandaloneJob]:
    return [
        StandaloneJob(
            arch=arch,
            space=built.space.name,
            macro=_macro(built),
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


def _train_missing(
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
        where = f"{store.path}" + (f", {len(adopted)} of them from the study" if adopted else "")
        print(
            f"verify: {done} of {len(picks)} archs already trained ({where}); "
            f"training the other {len(todo)}",
            file=sys.stderr,
        )
    jobs = _jobs(vcfg, built, store, todo, tuple(store.settings["seeds"]))
    count = 0

    def on_result(result: dict) -> None:
        nonlocal count
        stored = store.add(result)
        if also_store is not None:  # the study's storage: key = settings digest and arch
            also_store(f"{STUDY_ATTR}:{store.digest}:{stored['arch']}", stored)
        count += 1
        print(
            f"verify [{count}/{len(jobs)}] {stored['standalone_acc']:6.2f}%  "
            f"{stored['seconds']:5.1f}s  {stored['arch']}",
            file=sys.stderr,
            flush=True,
        )
        _kill_hook(count)

    tic = time.time()
    runner = _train(vcfg, built, jobs, on_ray, ray_address, on_result)
    return len(jobs), time.time() - tic, runner


def _winner_weights(vcfg, built, store, arch: str, on_ray: bool, ray_address) -> float | None:
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


def run(
    vcfg: DictConfig,
    built: Built,
    ranked: list[dict],
    out: Path,
    *,
    key: str,
    descending: bool,
    seed: int,
    checkpoint: str | None = None,
    on_ray: bool = False,
    ray_address: str | None = None,
    also_store: Callable[[str, dict], None] | None = None,
    study_attrs: Mapping[str, Any] | None = None,
) -> Verified | None:
    """Verify the leaderboard ``ranked``; writes ``verify.json`` and returns the outcome (None
    when ``verify.enabled`` is false). ``also_store(name, result)`` is called with each finished
    result besides the run directory's store (the pipeline passes a persistent study's
    ``set_user_attr``). ``study_attrs``: that study's user attributes; results stored there under
    the same settings are reused, so a verify killed in one run directory resumes in another."""
    if not vcfg.enabled:
        return None
    picks = select(ranked, int(vcfg.top_k), int(vcfg.control), seed)
    store = StandaloneStore(out / "verify", _settings(vcfg, built, checkpoint))
    earlier = from_study(study_attrs, f"{STUDY_ATTR}:{store.digest}:")
    trained, seconds, runner = _train_missing(
        vcfg, built, picks, store, on_ray, ray_address, also_store, earlier
    )
    rows = []
    for record, role in picks:
        result = store.results[record["arch"]]
        rows.append(
            {
                **record,
                "role": role,
                **{k: result[k] for k in ("standalone_acc", "standalone_acc_per_seed")},
            }
        )
    report = agreement_report(rows, key, descending, int(vcfg.bootstrap), seed)
    top_n = sum(r == "top" for _, r in picks)
    what = "from scratch" if vcfg.mode == "scratch" else "from the inherited weights"
    r = store.settings["recipe"]
    header = (
        f"verify: {len(rows)} archs trained standalone {what} ({top_n} top + {len(rows) - top_n} "
        f"control; {r['epochs']} epochs, batch {r['batch_size']}, lr {r['lr']}, seeds "
        f"{' '.join(map(str, store.settings['seeds']))}), accuracy on the validation split"
    )
    block = format_block(report, rows, header)
    winner = report["best"]["arch"]
    weights_acc = _winner_weights(vcfg, built, store, winner, on_ray, ray_address)
    if weights_acc is not None:
        next(r for r in rows if r["arch"] == winner)["weights_acc"] = weights_acc
    report |= {
        "mode": vcfg.mode,
        "split": "val",
        "recipe": r,
        "seeds": store.settings["seeds"],
        "archs": [{k: v for k, v in row.items() if k != "supernet"} for row in rows],
        "backend": runner,
        "workers": int(vcfg.workers),
        "trained_now": trained,
        "reused": len(rows) - trained,
        "winner_weights_retrained": weights_acc is not None,
        "train_seconds": seconds,
    }
    text = json.dumps(report, indent=2, sort_keys=True, allow_nan=False) + "\n"
    write_atomic(out / "verify.json", lambda f: f.write(text.encode("utf-8")))
    return Verified(rows, report, block, store, str(vcfg.mode))


def verified_net(verified: Verified, built: Built, arch: str):
    """The standalone net of a verified arch with its stored trained weights (first seed)."""
    job = StandaloneJob(arch, built.space.name, _macro(built), {}, (0,))
    net = build_net(job, 0)
    net.load_state_dict(verified.store.weights(arch))
    return net.eval()


def annotate(records: list[dict], ranked: list[dict], verified: Verified) -> None:
    """Give the verified rows of ``records`` and ``ranked`` their ``standalone_acc``."""
    accs = {r["arch"]: r["standalone_acc"] for r in verified.rows}
    for record in (*records, *ranked):
        if record["arch"] in accs:
            record["standalone_acc"] = accs[record["arch"]]


def export_winner(
    verified: Verified, built: Built, input_shape: tuple[int, ...], out: Path, onnx: bool = False
) -> dict[str, Path]:
    """After ``search.export.export_top`` wrote the supernet's pick into ``best/``: move it to
    ``best_supernet/`` and write the best verified arch, with its standalone-trained weights, into
    ``best/``. Its record gives the test accuracy once, labelled as such."""
    from search.export import export_subnet, normalization
    from supernet.standalone import accuracy

    pick = out / "best_supernet"
    if pick.exists():  # a rerun in the same run directory
        shutil.rmtree(pick)
    os.replace(out / "best", pick)
    best = verified.best
    net = verified_net(verified, built, best["arch"])
    first_seed = verified.store.settings["seeds"][0]
    record = {k: v for k, v in best.items() if k != "supernet"} | {
        "weights": f"trained standalone by the verify stage (verify.mode={verified.mode}, "
        f"seed {first_seed})",
        "standalone_acc_these_weights": best.get("weights_acc", best["standalone_acc_per_seed"][0]),
        "test_acc": accuracy(net, built.splits.test),
        "test_acc_note": "accuracy (%) of these weights on the test split, measured once for this "
        "record; no choice was made with it (archs were compared on the validation split)",
    }
    norm = normalization(built.splits)
    paths = export_subnet(net, best["arch"], record, input_shape, out / "best", norm, onnx=onnx)
    return paths | {"best_supernet": pick}
