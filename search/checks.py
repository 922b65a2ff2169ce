"""Checks ``search.run`` makes before it spends time: config errors (one line each, raised as
``SharenasError``) and warnings (one ``warning:`` line each on stderr)."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

from omegaconf import DictConfig

from search.config import SEARCH_SCHEMAS
from search.estimators import AUTO_BY_SPACE, AUTO_OTHER, get_estimator
from search.export import check_onnx_available
from search.objective import RECORD_KEYS, Objective
from search.racing import Race
from search.record import METRIC_DIRECTIONS, OPTUNA_DIRECTIONS
from search.tables import human
from supernet.cli import override_key
from supernet.config import checkpoint_config_diff
from supernet.errors import SharenasError
from supernet.schema import check_config

#: Record keys that exist only when an evaluator setting is on: key -> setting.
NEEDS_SETTING = {
    "flops": "evaluator.count_flops",
    "latency_ms": "evaluator.measure_latency",
    "train_loss": "evaluator.train_loss",
}


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def check_search_config(cfg: DictConfig) -> None:
    """Everything about ``cfg`` that can be wrong without training anything: the checks on the
    schemas' fields (``SEARCH_SCHEMAS``: seed, ranking key, constraints, top_k, evaluator), then
    the rules across keys (the ONNX packages, keys that need an evaluator setting turned on)."""
    for prefix, schema in SEARCH_SCHEMAS.items():  # each key's own checks, on its schema field
        check_config(cfg[prefix] if prefix else cfg, schema, prefix)
    key = cfg.results.key
    if cfg.results.onnx and cfg.results.export_best:
        check_onnx_available()
    used = {"results.key": [key]}
    used["searcher.objectives"] = list(cfg.searcher.get("objectives") or [])
    if cfg.evaluator.race:
        _check_race(cfg)
    used["constraints"] = [k for k, v in cfg.constraints.items() if v is not None]
    for where, keys in used.items():
        for k in keys:
            setting = NEEDS_SETTING.get(k)
            if k == "latency_ms" and cfg.evaluator.get("latency_table") is not None:
                continue  # predicted from the table
            if k == "train_loss" and _computes_train_loss(cfg.evaluator.estimator):
                continue  # the estimator computes it
            if setting is not None and not cfg.evaluator[setting.split(".")[1]]:
                also = (
                    ", or predict it with evaluator.latency_table=PATH (sharenas-latency "
                    "writes one)"
                    if k == "latency_ms"
                    else ""
                )
                raise SharenasError(
                    f"{where} uses {k!r} but {setting}=false, so no arch has it; "
                    f"turn it on with {setting}=true{also}"
                )


def _check_race(cfg: DictConfig) -> None:
    """Racing stops archs by score, before training: an estimator read from the validation
    split or scored without a validation pass (``search.racing.RACE_ESTIMATORS``), a search
    that ranks and steers by its score (the estimator's own key, ``val_acc`` or ``val_loss``, in
    its direction, orders records as the score does), and a raced top at least as long as the
    one printed and exported."""
    ev, key = cfg.evaluator, str(cfg.results.key)
    estimator = str(ev.estimator)
    if estimator == "auto":  # the space's; a checkpoint of another space is checked at its load
        estimator = AUTO_BY_SPACE.get(str(cfg.space.name), AUTO_OTHER)
    Race.check_estimator(estimator, str(ev.estimator))
    Race(top_k=ev.race_top_k, z=ev.race_z, images=ev.race_images)  # one line for a bad value
    objectives = list(cfg.searcher.get("objectives") or ["val_acc"])  # the searchers' default
    directions = list(cfg.searcher.get("directions") or ["maximize"])
    same = ("score", estimator)
    steers = [OPTUNA_DIRECTIONS.get(d) for d in directions] == [
        METRIC_DIRECTIONS.get(o) for o in objectives
    ]
    if key not in same or len(objectives) > 1 or objectives[0] not in same or not steers:
        raise SharenasError(
            f"evaluator.race=true stops archs that cannot reach the top by score; this search "
            f"ranks by results.key={key} and steers by searcher.objectives={objectives} "
            f"(directions {directions}): race a single-objective search that ranks and steers "
            "by score, or set evaluator.race=false"
        )
    if int(ev.race_top_k) < int(cfg.results.top_k):
        raise SharenasError(
            f"evaluator.race_top_k={ev.race_top_k} is below results.top_k={cfg.results.top_k}: "
            f"the exported top would hold archs scored on {ev.race_images} images; give "
            f"evaluator.race_top_k >= {cfg.results.top_k}"
        )


def _computes_train_loss(estimator: str) -> bool:
    """Whether the estimator, or every one that ``auto`` may become, measures the training loss."""
    names = {*AUTO_BY_SPACE.values(), AUTO_OTHER} if estimator == "auto" else {estimator}
    return all(get_estimator(n).needs_train_loss for n in names)


def command_line_overrides() -> list[str] | None:
    """The overrides typed on the command line of a Hydra run; None outside a Hydra app."""
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else None


def _given(entry: str, overrides: Sequence[str]) -> bool:
    """Whether ``entry`` ("data.pool=2 (checkpoint: 1)") is a key the overrides set: the key
    itself, a mapping that holds it, or, for a group choice (``data=mnist5k``), the option's
    identity (``data.name``, ``data._target_``); the option's other keys are its defaults."""
    key = entry.split("=", 1)[0]
    for name in map(override_key, overrides):
        if key == name or (key.startswith(name + ".") and "." in name):
            return True
        if "." not in name and key in (f"{name}.name", f"{name}._target_"):
            return True
    return False


def warn_checkpoint_overrides(
    cfg: DictConfig, saved: Mapping[str, Any], overrides: Sequence[str] | None = None
) -> None:
    """One ``warning:`` line per group whose config the checkpoint overrides. Only keys the user
    set count (``overrides``; by default the command line's): a config default that differs from
    the checkpoint is not the user's doing. Outside a Hydra app every difference is reported."""
    overrides = command_line_overrides() if overrides is None else overrides
    for group, keys in checkpoint_config_diff(cfg, saved).items():
        keys = [k for k in keys if not k.startswith("data.path=")]  # a moved dataset is used
        if overrides is not None:
            keys = [k for k in keys if _given(k, overrides)]
        if not keys:
            continue
        warn(
            f"supernet.checkpoint fixes {group}: ignoring {', '.join(keys)}; "
            f"the checkpoint's values are used"
        )


def _shown(key: str, value: float) -> str:
    return human(value) if key in ("params", "flops") else f"{value:g}"


def feasibility_note(
    records: Sequence[Mapping[str, Any]], objective: Objective, export: bool = True
) -> str | None:
    """A one-line ``warning:`` text when no record is feasible (naming the constraints and the
    best value reached for each), a plain note when some are not, None when all are."""
    infeasible = sum(not r["feasible"] for r in records)
    if not infeasible:
        return None
    limits = objective.describe_limits()
    if infeasible < len(records):
        return (
            f"{infeasible} of {len(records)} archs infeasible: they break {limits}; ranked after "
            "the rest"
        )
    seen = [
        f"smallest {k} seen {_shown(k, min(float(r[k]) for r in records))}"
        for k in objective.limits
        if k in RECORD_KEYS
    ]
    return (
        f"warning: no evaluated arch met the constraints {limits} ({'; '.join(seen)}); "
        f"ranking all {len(records)} archs"
        + (" and exporting the best infeasible one as best/" if export else "")
    )
