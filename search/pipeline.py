"""``run(cfg)``: train (or load) a supernet, search its paths, rank them, write results."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch.utils.tensorboard import SummaryWriter

from search.checks import check_search_config, feasibility_note, warn_checkpoint_overrides
from search.evaluate import Evaluator
from search.export import export_top, normalization
from search.objective import SEARCHER_DIRECTIONS, Objective
from search.ranking import Objectives, leaderboard, pareto_front
from search.result_files import write_results
from search.searchers.base import Searcher
from search.tables import format_table, table_columns, top_of
from search.tensorboard_log import log_to_tensorboard
from search.verify import annotate, check_verify, export_winner
from search.verify import run as verify
from search.verify_report import log_verify_to_tensorboard
from supernet.builder import load_trained
from supernet.config import run_dir
from supernet.errors import SharenasError
from supernet.spaces import build_space
from supernet.threads import apply_threads, check_threads


def _n_trials(searcher, space) -> int:
    n = getattr(searcher, "n_trials", None)
    return space.size() if n is None else int(n)


def _searcher_name(searcher: object) -> str:
    """E.g. "RandomSearcher", "OptunaSearcher(nsga2)"."""
    sampler = getattr(searcher, "sampler_name", None)
    return type(searcher).__name__ + (f"({sampler})" if sampler else "")


def _pareto_objectives(searcher) -> Objectives | None:
    """The searcher's objectives as (key, "max" | "min") when it has several, else None."""
    if len(searcher.objectives) < 2:
        return None
    return tuple(
        (k, SEARCHER_DIRECTIONS[d]) for k, d in zip(searcher.objectives, searcher.directions)
    )


def _check_storage(searcher: Searcher, backend: Any) -> None:
    """A backend that does not drive the searcher's ask/tell (Ray Tune's OptunaSearch) would
    silently neither store nor resume the study of ``searcher.storage``: refuse instead."""
    storage = getattr(searcher, "storage", None)
    if storage is not None and not getattr(backend, "uses_searcher_storage", True):
        raise SharenasError(
            f"searcher.storage={storage} is not used by {type(backend).__name__} (it runs its own "
            f"in-memory study, nothing would be stored or resumed); drop searcher.storage or use "
            f"backend=local"
        )


def _search(
    searcher: Searcher, evaluator: Evaluator, objective: Objective, backend: Any, total: int
) -> tuple[list[dict], list[dict]]:
    """(records of earlier runs of a resumed study, records evaluated now). A resumed study whose
    budget is spent evaluates nothing and says how to extend it; its stored trials are re-ranked."""
    earlier = searcher.resumed_records()
    done = searcher.n_asked  # archs a resumed study already evaluated (0 for a new search)
    left = total - done
    if left <= 0:
        print(
            f"the study's budget searcher.n_trials={total} was already spent by earlier runs "
            f"({done} archs): nothing new to evaluate, re-ranking its {len(earlier)} stored "
            f"archs; raise searcher.n_trials to search more",
            file=sys.stderr,
        )
        return earlier, []
    if done:
        print(
            f"resuming the study: {done} archs evaluated by earlier runs, {left} more to reach "
            f"searcher.n_trials={total}",
            file=sys.stderr,
        )
    return earlier, backend.run(searcher, evaluator, objective, left)


def _merge(earlier: list[dict], new: list[dict]) -> list[dict]:
    """One record per arch, earlier runs' first (an arch is never evaluated twice by a study)."""
    merged = {r["arch"]: r for r in earlier}
    for record in new:
        merged.setdefault(record["arch"], record)
    return list(merged.values())


def run(cfg: DictConfig, out_dir: str | Path | None = None) -> dict:
    """The whole search story; returns {"records", "leaderboard", "pareto", "paths",
    "checkpoint"}. The leaderboard ranks feasible archs first, by ``results.key`` in its
    direction (``search.objective.KEY_DIRECTIONS``)."""
    out = run_dir(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # Check and build everything a bad config can break *before* spending time on training.
    check_search_config(cfg)
    key = str(cfg.results.key)
    space = build_space(cfg.space.name)
    searcher = instantiate(cfg.searcher, space=space, seed=int(cfg.seed))
    objective = Objective(searcher.objectives, dict(cfg.constraints), key=key)
    backend = instantiate(cfg.backend)
    _check_storage(searcher, backend)
    check_verify(cfg.verify, _n_trials(searcher, space))
    checkpoint = cfg.supernet.checkpoint
    threads = cfg.trainer.num_threads
    check_threads(threads)
    if checkpoint is not None:  # else train() derives and prints it
        apply_threads(threads)
    if checkpoint is None:
        from supernet.training import train

        searcher.use_checkpoint(None)  # a resumed study refuses a new supernet before training
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
    evaluator_cfg = OmegaConf.to_container(cfg.evaluator, resolve=True)
    settings = {f"evaluator.{k}": v for k, v in evaluator_cfg.items()} | {"seed": cfg.seed}
    if state.ema is not None:  # which of its two weight sets scored the study's trials
        settings["supernet.ema"] = use_ema
    searcher.use_checkpoint(checkpoint, settings)  # a resumed study refuses another supernet
    evaluator = Evaluator.from_config(built, cfg.evaluator, seed=int(cfg.seed), threads=threads)
    total = _n_trials(searcher, built.space)
    earlier, new = _search(searcher, evaluator, objective, backend, total)
    records = _merge(earlier, new)
    if not records:
        raise SharenasError("the search evaluated no arch: nothing to rank or write")
    for record in records:
        record["feasible"] = objective.feasible(record)
        record["canonical"] = built.space.canonical(built.space.parse(record["arch"]))
    export = bool(cfg.results.export_best)
    note = feasibility_note(records, objective, export=export)
    if note and note.startswith("warning:"):
        print(note, file=sys.stderr)
    ranked = leaderboard(records, key=key, descending=objective.descending)
    on_ray = type(backend).__name__ == "RayBackend"
    verified = verify(
        cfg.verify,
        built,
        ranked,
        out,
        key=key,
        descending=objective.descending,
        seed=int(cfg.seed),
        checkpoint=str(checkpoint),
        on_ray=on_ray,
        ray_address=getattr(backend, "address", None),
    )
    if verified is not None:
        annotate(records, ranked, verified)
    meta = {
        "checkpoint": str(checkpoint),
        "space": built.space.name,
        "seed": int(cfg.seed),
        "searcher": _searcher_name(searcher),
        "key": key,
        "n_evaluated": len(records),
        "n_from_earlier_runs": len(earlier),
        "num_supernets": built.strategy.num_supernets,
        "sharing": state.sharing_name,
        "ema_decay": ema_decay,  # None: scored with the raw weights
    }
    objs = _pareto_objectives(searcher)
    rank = {"key": key, "objectives": objs, "descending": objective.descending}
    paths = write_results(out, records, meta, **rank)
    writer = SummaryWriter(str(out / "tb"))
    log_to_tensorboard(writer, records, top_k=int(cfg.results.top_k), **rank)
    if verified is not None:
        log_verify_to_tensorboard(writer, verified.rows, verified.report)
    writer.close()
    onnx = bool(cfg.results.onnx)
    if export:  # best/ and top/rank_2 .. top/rank_<top_k> (search.export.export_top)
        paths |= export_top(
            ranked,
            lambda arch: evaluator.calibrated(built.space.parse(arch)),
            evaluator.input_shape,
            out,
            int(cfg.results.top_k),
            normalization(built.splits),
            onnx=onnx,
        )
        if verified is not None:  # best/: the best verified arch; the pick -> best_supernet/
            paths |= export_winner(verified, built, evaluator.input_shape, out, onnx)
    k = int(cfg.results.top_k)
    better = "higher" if objective.descending else "lower"
    resumed = f", {len(earlier)} of them from earlier runs of the study" if earlier else ""
    print(
        f"\n{top_of(k, len(records))} evaluated archs{resumed} (ranked by {key}, {better} is "
        f"better; inherited weights, no retraining):"
    )
    if note and not note.startswith("warning:"):
        print(note)
    some_infeasible = not all(r["feasible"] for r in records)
    # the ranking key, every objective and every constrained cost are columns
    shown = [key, *searcher.objectives, *objective.limits]
    shown += ["standalone_acc"] if verified is not None else []
    shown += ["same_as"] if any(r.get("same_as") for r in ranked[:k]) else []  # equal networks
    columns = table_columns(shown, some_infeasible)
    print(format_table(ranked, k=k, columns=columns))
    front = []
    if objs is not None:
        pool = [r for r in ranked if r["feasible"]] or ranked
        front = pareto_front(pool, objs)
        names = ", ".join(f"{o} {d}" for o, d in objs)
        which = "feasible archs" if objective.limits and pool[0]["feasible"] else "archs"
        print(f"\nPareto front of the {len(pool)} {which} ({names}): {len(front)} archs")
        print(format_table(front, k=len(front), columns=columns))
    if verified is not None:
        print(f"\n{verified.block}")
    print(f"\nresults in {out}")
    return {
        "records": records,
        "leaderboard": ranked,
        "pareto": front,
        "paths": paths,
        "checkpoint": checkpoint,
        "verify": verified.report if verified is not None else None,
    }
