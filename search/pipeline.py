"""``run(cfg)``: train (or load) a supernet, search its paths, rank them, write results."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch.utils.tensorboard import SummaryWriter

from search.checks import (
    check_search_config,
    command_line_overrides,
    feasibility_note,
    warn_checkpoint_overrides,
)
from search.estimators import get_estimator, resolve_calibration, resolve_estimator
from search.evaluate import Evaluator, initial_for
from search.export import export_top, normalization
from search.objective import Objective
from search.racing import EXACT_ESTIMATORS
from search.ranking import Objectives, leaderboard, pareto_front
from search.record import OPTUNA_DIRECTIONS
from search.result_files import move_earlier_outputs, write_results
from search.searchers.base import Searcher
from search.study import Study
from search.tables import count, format_table, table_columns, top_of
from search.tensorboard_live import LiveSearchLog, score_histogram
from search.tensorboard_log import log_to_tensorboard
from search.verify import annotate, check_verify, export_winner
from search.verify import run as verify
from search.verify_report import log_verify_to_tensorboard
from supernet.builder import load_trained
from supernet.checkpoint import checkpoint_space
from supernet.cli import override_key
from supernet.config import run_dir
from supernet.errors import SharenasError
from supernet.spaces import build_space
from supernet.threads import apply_threads, check_threads


def _pareto_objectives(searcher: Searcher) -> Objectives | None:
    """The searcher's objectives as (key, "max" | "min") when it has several, else None."""
    if len(searcher.objectives) < 2:
        return None
    return tuple(
        (k, OPTUNA_DIRECTIONS[d]) for k, d in zip(searcher.objectives, searcher.directions)
    )


def _open_study(cfg: DictConfig) -> tuple[Study, Any]:
    """The study (searcher, objective, storage) and the backend, built before any training."""
    space = build_space(cfg.space.name)
    searcher = instantiate(cfg.searcher, space=space, seed=int(cfg.seed))
    objective = Objective(searcher.objectives, dict(cfg.constraints), key=str(cfg.results.key))
    backend = instantiate(cfg.backend)
    study = Study(searcher, objective)
    check_verify(cfg.verify, study.n_trials)
    return study, backend


def _checkpoint_space(cfg: DictConfig, overrides: Sequence[str] | None) -> None:
    """A search of a checkpoint takes the space it was trained on, said in one line, unless
    ``space=`` was typed (a different one is then refused by the load)."""
    given = cfg.supernet.checkpoint
    saved = checkpoint_space(given) if given is not None else None
    if saved is None or saved == cfg.space.name:
        return
    typed = overrides if overrides is not None else command_line_overrides()
    if typed is not None and any(override_key(o) in ("space", "space.name") for o in typed):
        return
    print(f"space={saved}: the space the checkpoint was trained on", file=sys.stderr)
    cfg.space.name = saved


def _supernet(cfg: DictConfig, study: Study, out: Path) -> tuple[str, Any, Any, float | None]:
    """(checkpoint, built supernet, its TrainState, EMA decay or None): train one first when
    ``supernet.checkpoint`` is null, then bind the study to it and to the scoring settings."""
    checkpoint = cfg.supernet.checkpoint
    threads = cfg.trainer.num_threads
    check_threads(threads)
    if checkpoint is not None:  # else train() derives and prints it
        apply_threads(threads)
    if checkpoint is None:
        from supernet.training import train

        study.bind(None)  # a resumed study refuses a new supernet before training
        print("no supernet.checkpoint given: training a supernet first", file=sys.stderr)
        checkpoint = train(cfg, out_dir=out)["checkpoint"]
    moved = cfg.data.get("path") if cfg.supernet.checkpoint is not None else None
    use_ema = bool(cfg.supernet.ema)
    built, state = load_trained(checkpoint, cfg.space.name, data_path=moved, ema=use_ema)
    ema_decay = state.ema_decay if use_ema else None
    if cfg.supernet.checkpoint is not None:  # say which of our settings the checkpoint overrides
        warn_checkpoint_overrides(cfg, state.config)
    if ema_decay is not None:
        print(f"scoring with the checkpoint's EMA weights (decay {ema_decay})", file=sys.stderr)
    cfg.evaluator.estimator = resolve_estimator(str(cfg.evaluator.estimator), built.space.name)
    ev = cfg.evaluator
    ev.calib_batches = resolve_calibration(ev.calib_batches, ev.estimator)  # auto: the estimator's
    evaluator_cfg = OmegaConf.to_container(cfg.evaluator, resolve=True)
    settings = {  # racing is not bound: a raced record says so, and the others are unchanged
        f"evaluator.{k}": v for k, v in evaluator_cfg.items() if not k.startswith("race")
    } | {"seed": cfg.seed}
    if state.ema is not None:  # which of its two weight sets scored the study's trials
        settings["supernet.ema"] = use_ema
    study.bind(checkpoint, settings)  # a resumed study refuses another supernet
    return checkpoint, built, state, ema_decay


def _live_log(
    cfg: DictConfig, study: Study, built: Any, writer: SummaryWriter, racing: bool
) -> LiveSearchLog:
    """Log the resolved config, then every record to TensorBoard as its trial finishes (also the
    records a resumed study holds already, so the tree shows the whole study)."""
    objective = study.objective
    config = OmegaConf.to_yaml(cfg, resolve=True)
    writer.add_text("config/search", "```yaml\n" + config + "\n```")
    live = LiveSearchLog(
        writer,
        built.space,
        key=objective.key,
        descending=objective.descending,
        objectives=_pareto_objectives(study.searcher) or (),
        num_supernets=built.strategy.num_supernets,
        feasible=objective.feasible,
        verify=bool(cfg.verify.enabled),
        raced=racing or any(r.raced is not None for r in study.earlier),
    )
    for record in study.earlier:
        live(record)
    if bool(cfg.results.live_log):
        study.add_listener(live)
    return live


def _search(study: Study, evaluator: Evaluator, backend: Any) -> list[dict]:
    """Evaluate what is left of the study's budget; returns every ranked record of the study.
    A resumed study whose budget is spent evaluates nothing and says how to extend it."""
    done, total = study.n_used(), study.n_trials
    if done >= total:
        print(
            f"the study's budget searcher.n_trials={total} was already spent by earlier runs "
            f"({done} archs): nothing new to evaluate, re-ranking its {len(study.earlier)} stored "
            f"archs; raise searcher.n_trials to search more",
            file=sys.stderr,
        )
    else:
        if done:
            print(
                f"resuming the study: {done} archs evaluated by earlier runs, {total - done} more "
                f"to reach searcher.n_trials={total}",
                file=sys.stderr,
            )
        evaluator.prepare()  # the fusion's reference archs, once, before workers get copies
        print(
            f"search: {study.searcher.describe()} over the {study.space.name} space "
            f"({study.space.size():,} archs), up to {total - done:,} to evaluate, "
            f"{type(backend).__name__.removesuffix('Backend').lower()} backend",
            file=sys.stderr,
        )
        backend.run(study, evaluator)
    if study.n_failed:
        print(
            f"warning: {study.n_failed} archs scored non-finite values (NaN or inf): recorded as "
            f"failed in the study, never ranked nor exported",
            file=sys.stderr,
        )
    records = [r.to_dict() for r in study.records()]
    if not records:
        raise SharenasError("the search evaluated no arch with finite scores: nothing to rank")
    _say_raced(records, {r.arch for r in study.earlier}, evaluator.race)
    return records


def _say_raced(records: list[dict], earlier: set[str], race: Any) -> None:
    """One line on the archs racing stopped, in this run and in earlier runs of the study."""
    new = [r for r in records if r["arch"] not in earlier]
    now = sum(r["raced"] is not None for r in new)
    before = sum(r["raced"] is not None for r in records) - now
    if race is None and not before:
        return
    exact = race is not None and race.exact
    if race is None:
        said = "evaluator.race is off in this run"
    elif exact:
        said = (
            f"evaluator.race: {now} of the {len(new)} archs this run evaluated stopped below the "
            f"top by their exact score (or by a constraint), so the top and the order by score "
            f"are the full evaluator's; their val_acc and val_loss come from a first stage (one "
            f"calibration batch and {race.images} validation images; raced={race.images} in "
            "leaderboard.csv)"
        )
    else:
        said = (
            f"evaluator.race: {now} of the {len(new)} archs this run evaluated stopped after the "
            f"first stage (one calibration batch and {race.images} validation images; raced="
            f"{race.images} in leaderboard.csv)"
        )
    if race is not None and len(new) and not now:
        full = sum(r["raced"] is None for r in records)
        said += (
            f"; racing starts once {race.top_k} archs are scored in full ({full} were)"
            if full < race.top_k
            else "; every arch scored at or above the top when it came"
            if exact
            else f"; none could be told below the top on {race.images} images"
        )
    if before:
        said += f"; {before} archs of earlier runs of the study were stopped so"
    print(said, file=sys.stderr)


def _rank(
    cfg: DictConfig,
    study: Study,
    records: list[dict],
    built: Any,
    backend: Any,
    exact: bool = False,
    **kw: Any,
):
    """(ranked records, feasibility note, verification or None): feasibility and canonical forms
    marked, the leaderboard by ``results.key``, then the verify stage on it. ``exact``: the
    estimator races exactly (a raced record's score is its full score)."""
    key, objective = str(cfg.results.key), study.objective
    for record in records:
        record["feasible"] = objective.feasible(record)
        record["canonical"] = built.space.canonical(built.space.parse(record["arch"]))
    note = feasibility_note(records, objective, export=bool(cfg.results.export_best))
    if note and note.startswith("warning:"):
        print(note, file=sys.stderr)
    ranked = leaderboard(records, key=key, descending=objective.descending)
    top_k = int(cfg.results.top_k)
    _warn_raced_top(ranked, top_k, exact)
    verified = verify(
        cfg.verify,
        built,
        ranked,
        kw["out"],
        key=key,
        descending=objective.descending,
        seed=int(cfg.seed),
        checkpoint=str(kw["checkpoint"]),
        on_ray=type(backend).__name__ == "RayBackend",
        ray_address=getattr(backend, "address", None),
        also_store=study.optuna.set_user_attr if study.persistent else None,
        study_attrs=study.optuna.user_attrs if study.persistent else None,
    )
    if verified is not None:
        annotate(records, ranked, verified)
        _note_raced_verified(ranked, verified, exact)
    return ranked, note, verified


def _warn_raced_top(ranked: list[dict], top_k: int, exact: bool) -> None:
    """A warning naming the ranks of the printed top that racing stopped (a study raced with a
    shorter top, re-ranked now)."""
    if raced := [str(i) for i, r in enumerate(ranked[:top_k], 1) if r.get("raced") is not None]:
        what = (
            "their scores are exact, their val_acc and val_loss first-stage figures"
            if exact
            else "they hold first-stage figures"
        )
        print(
            f"warning: {len(raced)} of the top {top_k} (ranks {', '.join(raced)}) were stopped by "
            f"racing: {what} (the study raced a shorter top than results.top_k={top_k}, or "
            "under other constraints)",
            file=sys.stderr,
        )


def _note_raced_verified(ranked: list[dict], verified: Any, exact: bool) -> None:
    """A note on the verified archs racing stopped: what their supernet figures are."""
    raced = {r["arch"] for r in ranked if r.get("raced") is not None}
    if picked := [r for r in verified.rows if r["arch"] in raced]:
        what = (
            "their supernet scores in the agreement table below are exact; only their "
            "val_acc and val_loss are first-stage figures"
            if exact
            else "their supernet scores in the agreement table below are first-stage "
            "figures, biased low"
        )
        was = "was" if len(picked) == 1 else "were"
        print(
            f"note: {len(picked)} of the {len(verified.rows)} verified archs {was} stopped by "
            f"racing (controls drawn from every evaluated arch): {what}",
            file=sys.stderr,
        )


def _write(cfg: DictConfig, study: Study, records: list[dict], meta: dict, out: Path, verified, tb):
    """results.json, leaderboard.csv, pareto.json and the end-of-search TensorBoard logs."""
    objective = study.objective
    objs = _pareto_objectives(study.searcher)
    rank = {"key": objective.key, "objectives": objs, "descending": objective.descending}
    paths = write_results(out, records, meta, **rank)
    writer, live = tb
    if not bool(cfg.results.live_log):  # the same sessions and curves, written at the end
        for record in sorted(records, key=lambda r: r["trial"]):
            live(record)
    log_to_tensorboard(writer, records, top_k=int(cfg.results.top_k), **rank)
    if (fig := score_histogram(records, objective.key)) is not None:
        writer.add_figure(f"search/histogram_{objective.key}", fig)
    if verified is not None:
        log_verify_to_tensorboard(writer, verified.rows, verified.report)
        live.add_standalone(verified.rows, {r["arch"]: r["trial"] for r in records})
    writer.close()
    return paths


def _export(cfg: DictConfig, ranked: list[dict], built: Any, evaluator: Evaluator, out, verified):
    """best/ and top/rank_2 .. top/rank_<top_k>; with verification, best/ is the best verified
    arch and the supernet's pick goes to best_supernet/."""
    onnx = bool(cfg.results.onnx)
    paths = export_top(
        ranked,
        lambda arch: evaluator.calibrated(built.space.parse(arch)),
        evaluator.input_shape,
        out,
        int(cfg.results.top_k),
        normalization(built.splits),
        onnx=onnx,
        classes=built.splits.classes,
    )
    if verified is not None:
        paths |= export_winner(verified, built, evaluator.input_shape, out, onnx)
    return paths


def _report(cfg: DictConfig, study: Study, records: list, ranked: list, note, verified) -> list:
    """Print the leaderboard (and a multi-objective search's Pareto front); returns the front."""
    key, objective, k = str(cfg.results.key), study.objective, int(cfg.results.top_k)
    better = "higher" if objective.descending else "lower"
    n = len(study.earlier)
    resumed = f", {n} of them from earlier runs of the study" if n else ""
    what = key
    if key == "score":  # say what the score is: the estimator's value
        estimator = get_estimator(str(cfg.evaluator.estimator))
        what = f"score = {estimator.name}: {estimator.describe}"
    print(
        f"\n{top_of(k, len(records))} evaluated archs{resumed} (ranked by {what}, {better} is "
        f"better; inherited weights, no retraining):"
    )
    if note and not note.startswith("warning:"):
        print(note)
    some_infeasible = not all(r["feasible"] for r in records)
    # the ranking key, every objective and every constrained cost are columns
    shown = [key, *study.searcher.objectives, *objective.limits]
    shown += ["standalone_acc"] if verified is not None else []
    shown += ["same_as"] if any(r.get("same_as") for r in ranked[:k]) else []  # equal networks
    columns = table_columns(shown, some_infeasible)
    print(format_table(ranked, k=k, columns=columns))
    front = []
    if (objs := _pareto_objectives(study.searcher)) is not None:
        pool = [r for r in ranked if r["feasible"]] or ranked
        front = pareto_front(pool, objs)
        names = ", ".join(f"{o} {d}" for o, d in objs)
        which = "feasible arch" if objective.limits and pool[0]["feasible"] else "arch"
        size = count(len(front), "arch")
        print(f"\nPareto front of the {count(len(pool), which)} ({names}): {size}")
        print(format_table(front, k=len(front), columns=columns))
    if verified is not None:
        print(f"\n{verified.block}")
        if cfg.results.export_best:
            best = verified.report["best"]
            print(
                f"best/ holds the best verified arch (leaderboard rank {best['rank']}) with its "
                f"standalone-trained weights; best_supernet/ holds the supernet's pick (rank 1)"
            )
    return front


def _evaluator(cfg: DictConfig, built: Any, state: Any, study: Study) -> Evaluator:
    """The search's evaluator; with racing, the records a resumed study holds already set the
    top it races against."""
    evaluator = Evaluator.from_config(
        built,
        cfg.evaluator,
        seed=int(cfg.seed),
        threads=cfg.trainer.num_threads,
        initial=initial_for(str(cfg.evaluator.estimator), state.config),  # for the angle
        limits=dict(cfg.constraints),
    )
    if evaluator.race is not None:
        evaluator.race.observe_all(r.to_dict() for r in study.earlier)
    return evaluator


def run(
    cfg: DictConfig, out_dir: str | Path | None = None, overrides: Sequence[str] | None = None
) -> dict:
    """The whole search story; returns {"records", "leaderboard", "pareto", "paths",
    "checkpoint", "verify", "interrupted"}. The leaderboard ranks feasible archs first, by
    ``results.key`` in its direction (``search.record.METRIC_DIRECTIONS``). ``overrides``: the
    ones ``cfg`` was composed with (default: the Hydra app's command line), to tell a typed
    ``space=`` from the config's default."""
    out = run_dir(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    check_search_config(cfg)  # everything a bad config can break, before any training
    given = cfg.supernet.checkpoint
    _checkpoint_space(cfg, overrides)
    study, backend = _open_study(cfg)
    try:
        checkpoint, built, state, ema_decay = _supernet(cfg, study, out)
        evaluator = _evaluator(cfg, built, state, study)
        # a rerun in this directory: the earlier search's files go to earlier/<n>/ (tb/ too,
        # unless the supernet is trained here or was, whose logs it holds)
        trained_here = given is None or Path(given).resolve().parent == out.resolve()
        move_earlier_outputs(out, tensorboard=not trained_here)
        writer = SummaryWriter(str(out / "tb"))
        tb = (writer, _live_log(cfg, study, built, writer, evaluator.race is not None))
        records = _search(study, evaluator, backend)
    finally:
        study.close()
    exact = evaluator.scorer.estimator.name in EXACT_ESTIMATORS
    ranked, note, verified = _rank(
        cfg, study, records, built, backend, exact, out=out, checkpoint=checkpoint
    )
    meta = {
        "checkpoint": str(checkpoint),
        "space": built.space.name,
        "seed": int(cfg.seed),
        "searcher": study.searcher.describe(),
        "key": str(cfg.results.key),
        "n_evaluated": len(records),
        "n_from_earlier_runs": len(study.earlier),
        "n_failed": len(study.failed()),  # non-finite scores: never ranked
        "num_supernets": built.strategy.num_supernets,
        "sharing": state.sharing_name,
        "ema_decay": ema_decay,  # None: scored with the raw weights
    }
    paths = _write(cfg, study, records, meta, out, verified, tb)
    if cfg.results.export_best:
        paths |= _export(cfg, ranked, built, evaluator, out, verified)
    front = _report(cfg, study, records, ranked, note, verified)
    print(f"\nresults in {out}")
    return {
        "records": records,
        "leaderboard": ranked,
        "pareto": front,
        "paths": paths,
        "checkpoint": checkpoint,
        "verify": verified.report if verified is not None else None,
        "interrupted": bool(getattr(backend, "interrupted", False)),  # Ctrl-C: a partial search
    }
