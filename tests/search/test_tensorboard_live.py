"""TensorBoard as a search runs: event files read back after real searches."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata as hp_metadata

from search.backends.local import LocalBackend
from search.pipeline import run
from search.searchers import RandomSearcher
from search.study import Study
from search.tensorboard_live import LiveSearchLog, session_name
from supernet.spaces import build_space
from tests.conftest import compose_tiny


def runs(tb: Path) -> dict[str, EventAccumulator]:
    """Every TensorBoard run (a folder holding event files) under ``tb``, loaded."""
    folders = sorted({f.parent for f in tb.rglob("events.out.tfevents.*")})
    loaded = {}
    for folder in folders:
        acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
        acc.Reload()
        loaded[str(folder.relative_to(tb))] = acc
    return loaded


def sessions(loaded: dict[str, EventAccumulator]) -> dict[str, dict]:
    """Run name -> hparams of each run that holds an HParams session start."""
    found = {}
    for name, acc in loaded.items():
        content = acc.PluginTagToContent(hp_metadata.PLUGIN_NAME)
        if hp_metadata.SESSION_START_INFO_TAG in content:
            info = hp_metadata.parse_session_start_info_plugin_data(
                content[hp_metadata.SESSION_START_INFO_TAG]
            )
            found[name] = {k: v.WhichOneof("kind") and v for k, v in info.hparams.items()}
    return found


def hparam_value(v) -> object:
    kind = v.WhichOneof("kind")
    return getattr(v, kind)


def test_each_record_is_in_tensorboard_before_the_next_trial_runs(tmp_path) -> None:
    """Live, not at the end: while trial k is evaluated, trial k-1's scalar and session are
    already on disk (read back from the event files, no timing involved)."""
    from torch.utils.tensorboard import SummaryWriter

    space = build_space("nb201")
    study = Study(RandomSearcher(space, seed=0, n_trials=4))
    writer = SummaryWriter(str(tmp_path))
    study.add_listener(LiveSearchLog(writer, space, "val_acc", True, ()))
    seen: list[int] = []

    def evaluate(arch) -> dict:
        trial = len(seen)
        if trial:
            loaded = runs(tmp_path)
            steps = [e.step for e in loaded["."].Scalars("search/val_acc")]
            assert steps == list(range(trial))  # every earlier trial, this one not yet
            assert session_name(trial - 1) in sessions(loaded)
        seen.append(trial)
        return {"arch": str(arch), "val_acc": 10.0 * trial, "params": 100 + trial}

    LocalBackend(progress=False).run(study, evaluate)
    writer.close()
    loaded = runs(tmp_path)
    best = [e.value for e in loaded["."].Scalars("search/best_val_acc")]
    assert best == [0.0, 10.0, 20.0, 30.0]  # the running best, one point per trial


def test_multi_objective_logs_the_hypervolume_as_the_front_grows(tmp_path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    space = build_space("nb201")
    writer = SummaryWriter(str(tmp_path))
    live = LiveSearchLog(writer, space, "val_acc", True, [("val_acc", "max"), ("params", "min")])
    archs = list(itertools.islice(space.enumerate(), 5))
    points = [(50.0, 200), (60.0, 300), (40.0, 100), (55.0, 250), (70.0, 90)]
    for trial, (arch, (acc, params)) in enumerate(zip(archs, points)):
        live({"arch": str(arch), "trial": trial, "val_acc": acc, "params": params})
    writer.close()
    hv = [e.value for e in runs(tmp_path)["."].Scalars("search/hypervolume")]
    assert len(hv) == 5 and all(b >= a for a, b in zip(hv, hv[1:])) and hv[-1] > hv[0]


def test_the_running_best_never_goes_down_when_trials_finish_out_of_order(tmp_path) -> None:
    """As on Ray: trial 2 finishes first, then 0, then 1; the best is logged at the highest
    trial finished so far, so neither its steps nor its values go down."""
    from torch.utils.tensorboard import SummaryWriter

    space = build_space("nb201")
    writer = SummaryWriter(str(tmp_path))
    live = LiveSearchLog(writer, space, "val_acc", True, ())
    archs = list(itertools.islice(space.enumerate(), 3))
    for trial, acc in [(2, 50.0), (0, 10.0), (1, 60.0)]:
        live({"arch": str(archs[trial]), "trial": trial, "val_acc": acc})
    writer.close()
    best = runs(tmp_path)["."].Scalars("search/best_val_acc")
    assert [(e.step, e.value) for e in best] == [(2, 50.0), (2, 50.0), (2, 60.0)]


@pytest.fixture(scope="module")
def searched(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("search")
    cfg = compose_tiny(
        "search",
        [
            "verify=default",
            "searcher=random",
            "searcher.n_trials=6",
            "verify.top_k=2",
            "verify.control=1",
            "verify.recipe.epochs=1",
        ],
    )
    return out, {**run(cfg, out_dir=out), "key": str(cfg.results.key)}


def test_search_tree_holds_one_session_per_arch_and_no_blank_ones(searched) -> None:
    out, result = searched
    loaded = runs(out / "tb")
    found = sessions(loaded)
    space = build_space("nb201")
    decisions = set(space.choices())
    by_trial = {session_name(r["trial"]): r for r in result["records"]}
    assert set(found) == set(by_trial)  # every evaluated arch, and nothing else, is a session
    for name, hparams in found.items():
        assert set(hparams) == decisions | {"supernet"}  # one hparam per decision + sub-supernet
        arch = space.parse(by_trial[name]["arch"])
        assert {d: hparam_value(hparams[d]) for d in decisions} == dict(arch)
        metrics = set(loaded[name].Tags()["scalars"])
        assert "hparam/val_acc" in metrics and "hparam/params" in metrics
    verified = [name for name in found if "hparam/standalone_acc" in loaded[name].Tags()["scalars"]]
    assert len(verified) == 3  # 2 top + 1 control, their standalone accuracy a metric
    root = loaded["."]
    content = root.PluginTagToContent(hp_metadata.PLUGIN_NAME)
    experiment = hp_metadata.parse_experiment_plugin_data(content[hp_metadata.EXPERIMENT_TAG])
    domains = {h.name: list(h.domain_discrete.values) for h in experiment.hparam_infos}
    assert [v.string_value for v in domains["edge_1_0"]] == space.choices()["edge_1_0"]
    assert "hparam/standalone_acc" in {m.name.tag for m in experiment.metric_infos}


def test_search_tree_has_live_curves_text_images_and_no_tune_tags(searched) -> None:
    out, result = searched
    loaded = runs(out / "tb")
    root = loaded["."]
    key = result["key"]
    walls = {e.wall_time for e in root.Scalars(f"search/{key}")}
    assert len(walls) == len(result["records"]) > 1  # one write per finished trial
    tags = root.Tags()
    assert {"config/search", "leaderboard"} <= {
        t.split("/text_summary")[0] for t in tags["tensors"]
    }
    assert "pareto" in tags["images"] and f"search/histogram_{key}" in tags["images"]
    assert "verify/estimate_vs_standalone" in tags["images"]
    assert "custom_scalars__config__" in tags["tensors"]
    every = {
        t for acc in loaded.values() for kind in ("scalars", "tensors") for t in acc.Tags()[kind]
    }
    assert not [t for t in every if t.startswith("ray/")]
    assert not list(out.rglob("ray_results"))  # a local search writes no Tune folders
