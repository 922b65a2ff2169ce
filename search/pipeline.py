"""``run(cfg)``: train (or load) a supernet, search its paths, rank them, write results."""

from __future__ import annotations

import sys
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig
from torch.utils.tensorboard import SummaryWriter

from search.evaluate import Evaluator
from search.export import export_subnet
from search.objective import Objective
from search.ranking import format_table, leaderboard, log_to_tensorboard, write_results
from supernet.builder import load_trained
from supernet.checkpoint import load_checkpoint
from supernet.config import run_dir
from supernet.spaces import build_space


def _n_trials(searcher, space) -> int:
    n = getattr(searcher, "n_trials", None)
    return space.size() if n is None else int(n)


def run(cfg: DictConfig, out_dir: str | Path | None = None) -> dict:
    """The whole search story; returns {"records", "leaderboard", "paths", "checkpoint"}."""
    out = run_dir(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # Build everything a bad config can break *before* spending time on training.
    space = build_space(cfg.space.name)
    searcher = instantiate(cfg.searcher, space=space, seed=int(cfg.seed))
    objective = Objective(searcher.objectives, dict(cfg.constraints))
    backend = instantiate(cfg.backend)
    checkpoint = cfg.supernet.checkpoint
    if checkpoint is None:
        from supernet.training import train

        print("no supernet.checkpoint given: training a supernet first", file=sys.stderr)
        checkpoint = train(cfg, out_dir=out)["checkpoint"]
    else:
        load_checkpoint(checkpoint, space=cfg.space.name)  # fail fast on a bad path or space
    built, payload = load_trained(checkpoint, space=cfg.space.name)
    ev = cfg.evaluator
    evaluator = Evaluator(
        built,
        calib_batches=ev.calib_batches,
        calib_batch_size=ev.calib_batch_size,
        batch_size=ev.batch_size,
        count_flops=ev.count_flops,
        measure_latency=ev.measure_latency,
        seed=int(cfg.seed),
        device=ev.device,
    )
    records = backend.run(searcher, evaluator, objective, _n_trials(searcher, built.space))
    for record in records:
        record["feasible"] = objective.feasible(record)
    key = cfg.results.key
    ranked = leaderboard([r for r in records if r["feasible"]] or records, key=key)
    meta = {
        "checkpoint": str(checkpoint),
        "space": built.space.name,
        "seed": int(cfg.seed),
        "searcher": str(cfg.searcher._target_),
        "n_evaluated": len(records),
        "num_supernets": built.strategy.num_supernets,
        "sharing": payload["sharing"]["name"],
    }
    paths = write_results(out, records, meta, key=key)
    writer = SummaryWriter(str(out / "tb"))
    log_to_tensorboard(writer, records, key=key, top_k=int(cfg.results.top_k))
    writer.close()
    if cfg.results.export_best and ranked:
        best = ranked[0]
        arch = built.space.parse(best["arch"])
        paths.update(
            export_subnet(
                evaluator.calibrated(arch), best["arch"], best, evaluator.input_shape, out / "best"
            )
        )
    print(
        f"\ntop {cfg.results.top_k} of {len(records)} evaluated archs "
        f"(ranked by {key}, inherited weights, no retraining):"
    )
    print(format_table(ranked, k=int(cfg.results.top_k)))
    print(f"\nresults in {out}")
    return {"records": records, "leaderboard": ranked, "paths": paths, "checkpoint": checkpoint}
