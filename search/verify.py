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
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from search.calibrate import FEATURES, Design, calibrate_ranking, format_calibration
from search.tables import count
from search.verify_jobs import STUDY_ATTR, macro, train_missing, winner_weights
from search.verify_report import agreement_report, format_block
from search.verify_store import StandaloneStore, data_digest, from_study
from search.verify_train import StandaloneJob, build_net
from supernet.builder import Built
from supernet.errors import SharenasError, check_int
from supernet.fileio import write_atomic
from supernet.standalone import StandaloneRecipe

MODES = ("scratch", "finetune")
BACKENDS = ("auto", "local", "ray")


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
    seeds = [check_int("verify.seeds[]", seed, 0) for seed in vcfg.seeds]
    if len(set(seeds)) < len(seeds):  # one training twice is not a two-seed mean
        repeated = sorted({s for s in seeds if seeds.count(s) > 1})
        raise SharenasError(
            f"verify.seeds={list(vcfg.seeds)} repeats {', '.join(map(str, repeated))}: the same "
            f"seed trains the same net; give distinct seeds, e.g. verify.seeds=[0,1]"
        )
    check_int("verify.calibrate_min", vcfg.calibrate_min, 3)
    if vcfg.calibrate_features not in FEATURES:
        raise SharenasError(
            f"unknown verify.calibrate_features {vcfg.calibrate_features!r}; allowed: "
            f"{', '.join(FEATURES)}"
        )
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
        "macro": macro(built),
        "data": {"name": splits.name, "digest": data_digest(data)},
    }
    if vcfg.mode == "finetune":  # the starting weights come from this supernet
        settings["supernet"] = str(checkpoint)
    return settings


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
    trained, seconds, runner = train_missing(
        vcfg, built, picks, store, on_ray, ray_address, also_store, earlier
    )
    rows = [{**record, "role": role, **_result(store, record["arch"])} for record, role in picks]
    report = agreement_report(
        rows, key, descending, int(vcfg.bootstrap), seed, len(built.splits.val)
    )
    block = format_block(report, rows, _header(vcfg, store, rows))
    if warning := _at_chance(rows, built.splits.num_classes, store.settings["recipe"]):
        report["warning"] = warning
        block = f"{warning}\n{block}"
    if vcfg.calibrate:  # every row of ranked gets calibrated_acc when enough archs were verified
        report["calibration"], text = _calibrate(vcfg, built, ranked, rows, key, descending)
        block += "\n\n" + text
    winner = report["best"]["arch"]
    tic = time.time()
    weights_acc = winner_weights(vcfg, built, store, winner, on_ray, ray_address)
    seconds += time.time() - tic
    report |= {
        "mode": vcfg.mode,
        "split": "val",
        "recipe": store.settings["recipe"],
        "seeds": store.settings["seeds"],
        "archs": [{k: v for k, v in row.items() if k != "supernet"} for row in rows],
        "backend": runner,
        "workers": int(vcfg.workers),
        "trained_now": trained,
        "reused": len(rows) - trained,
        "winner_weights_retrained": weights_acc is not None,
        "winner_weights_acc": weights_acc,  # None: the weights trained with its result
        "train_seconds": seconds,
    }
    text = json.dumps(report, indent=2, sort_keys=True, allow_nan=False) + "\n"
    write_atomic(out / "verify.json", lambda f: f.write(text.encode("utf-8")))
    return Verified(rows, report, block, store, str(vcfg.mode))


def _calibrate(vcfg, built: Built, ranked: list, rows: list, key: str, descending: bool):
    """(calibration report, printed block): ``search.calibrate`` fitted on the verified ``rows``."""
    design = Design(key, descending, built.space.choices(), str(vcfg.calibrate_features))
    decisions = [dict(built.space.parse(r["arch"])) for r in ranked]
    report = calibrate_ranking(ranked, rows, design, decisions, int(vcfg.calibrate_min))
    return report, format_calibration(report, ranked, key, 10, rows)


#: Record fields measured with the supernet's inherited weights (named in best/record.json).
ESTIMATE_KEYS = ("score", "val_acc", "val_loss", "train_loss", "angle", "zero_cost")


def _at_chance(rows: list[dict], num_classes: int, recipe: dict) -> str | None:
    """A warning when at least half the verified archs trained to about chance accuracy: the
    standalone recipe is too short for the data, and no figure below says much."""
    chance = 100.0 / max(num_classes, 1)
    low = [r for r in rows if r["standalone_acc"] <= chance + 2.0]
    if 2 * len(low) < len(rows):
        return None
    return (
        f"warning: {len(low)} of {len(rows)} verified archs trained to about chance accuracy "
        f"(<= {chance + 2.0:.1f}%): verify.recipe.epochs={recipe['epochs']} is too short for this "
        f"data, so the agreement figures below say little; raise verify.recipe.epochs"
    )


def _result(store: StandaloneStore, arch: str) -> dict:
    return {k: store.results[arch][k] for k in ("standalone_acc", "standalone_acc_per_seed")}


def _header(vcfg: DictConfig, store: StandaloneStore, rows: list[dict]) -> str:
    top_n = sum(row["role"] == "top" for row in rows)
    what = "from scratch" if vcfg.mode == "scratch" else "from the inherited weights"
    r = store.settings["recipe"]
    return (
        f"verify: {count(len(rows), 'arch')} trained standalone {what} ({top_n} top + "
        f"{len(rows) - top_n} control; {count(r['epochs'], 'epoch')}, batch {r['batch_size']}, "
        f"lr {r['lr']}, seeds "
        f"{' '.join(map(str, store.settings['seeds']))}), accuracy on the validation split"
    )


def verified_net(verified: Verified, built: Built, arch: str):
    """The standalone net of a verified arch with its stored trained weights (first seed)."""
    job = StandaloneJob(arch, built.space.name, macro(built), {}, (0,))
    net = build_net(job, 0)
    net.load_state_dict(verified.store.weights(arch))
    return net.eval()


def annotate(records: list[dict], ranked: list[dict], verified: Verified) -> None:
    """Give the verified rows of ``records`` and ``ranked`` their ``standalone_acc``, and every
    row of ``records`` the ``calibrated_acc`` the calibration gave ``ranked``."""
    accs = {r["arch"]: r["standalone_acc"] for r in verified.rows}
    calibrated = {r["arch"]: r["calibrated_acc"] for r in ranked if "calibrated_acc" in r}
    for record in (*records, *ranked):
        if record["arch"] in accs:
            record["standalone_acc"] = accs[record["arch"]]
        if record["arch"] in calibrated:
            record["calibrated_acc"] = calibrated[record["arch"]]


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
        "standalone_acc_these_weights": best["standalone_acc_per_seed"][0]
        if verified.report.get("winner_weights_acc") is None
        else verified.report["winner_weights_acc"],
        "estimates_note": f"{', '.join(k for k in ESTIMATE_KEYS if k in best)} are the "
        "supernet's estimates for this arch (inherited weights); these weights were trained "
        "standalone: their own accuracy is standalone_acc_these_weights",
        "test_acc": accuracy(net, built.splits.test),
        "test_acc_note": "accuracy (%) of these weights on the test split, measured once for this "
        "record; no choice was made with it (archs were compared on the validation split)",
    }
    norm = normalization(built.splits)
    paths = export_subnet(
        net,
        best["arch"],
        record,
        input_shape,
        out / "best",
        norm,
        onnx=onnx,
        classes=built.splits.classes,
    )
    return paths | {"best_supernet": pick}
