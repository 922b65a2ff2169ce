"""Conformance suite for every searcher, plus searcher-specific behaviour and the configs."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import hydra.utils
import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from search.searchers import (
    SEARCHERS,
    EvolutionSearcher,
    ExhaustiveSearcher,
    OptunaSearcher,
    Proposal,
    RandomSearcher,
    Searcher,
)
from search.searchers.optuna_searcher import SAMPLERS
from supernet.arch import Arch
from supernet.errors import SharenasError
from supernet.spaces import build_space
from supernet.spaces.base import Space
from tests.conftest import compose_config

CONF = Path(__file__).resolve().parents[2] / "conf" / "searcher"
N_TRIALS = 30


class TinySpace(Space):
    """2 decisions x 2 choices = 4 archs, string form 'a-b'."""

    def choices(self) -> dict[str, list[str]]:
        return {"a": ["a0", "a1"], "b": ["b0", "b1"]}

    def format(self, arch: Mapping[str, str]) -> str:
        return f"{arch['a']}-{arch['b']}"

    def parse(self, text: str) -> Arch:
        return self.make(dict(zip("ab", text.split("-"))))


@pytest.fixture(scope="module")
def nb201() -> Space:
    return build_space("nb201")


def n_conv3(arch: Arch) -> int:
    return sum(op == "nor_conv_3x3" for op in arch.values())


def score(arch: Arch) -> float:
    """Synthetic objective: number of 3x3 convs plus deterministic noise in [0, 0.1)."""
    noise = int(hashlib.sha256(str(arch).encode()).hexdigest()[:8], 16) / 2**32
    return n_conv3(arch) + 0.1 * noise


def flops(arch: Arch) -> float:
    return float(sum(op.startswith("nor_conv") for op in arch.values()))


# name -> (class, extra kwargs, stochastic); optuna once per sampler, GP kept short (slow fits).
CASES: dict[str, tuple[type[Searcher], dict, bool]] = {
    name: (cls, {}, cls is not ExhaustiveSearcher)
    for name, cls in SEARCHERS.items()
    if cls is not OptunaSearcher
}
for sampler in SAMPLERS:
    extra = {"sampler_kwargs": {"n_startup_trials": 8}, "n_trials": 12} if sampler == "gp" else {}
    CASES[f"optuna-{sampler}"] = (OptunaSearcher, {"sampler": sampler, **extra}, True)


def drive(
    searcher: Searcher, n: int = N_TRIALS, sign: float = 1.0, max_flops: float | None = None
) -> list[Proposal]:
    """Up to ``n`` ask/tell rounds with the synthetic objective(s); returns the proposals."""
    proposals = []
    while len(proposals) < n and (proposal := searcher.ask()) is not None:
        arch = proposal.arch
        values = [sign * score(arch), flops(arch)][: len(searcher.objectives)]
        constraints = None if max_flops is None else [flops(arch) - max_flops]
        searcher.tell(proposal, values, constraints)
        proposals.append(proposal)
    return proposals


def strings(proposals: list[Proposal]) -> list[str]:
    return [str(p.arch) for p in proposals]


def build(name: str, space: Space, seed: int = 0) -> Searcher:
    cls, extra, _ = CASES[name]
    budget = {"n_trials": N_TRIALS} if cls is not ExhaustiveSearcher else {}
    return cls(space, seed=seed, **{**budget, **extra})


@pytest.mark.parametrize("name", sorted(CASES))
def test_conformance(name: str, nb201: Space) -> None:
    searcher = build(name, nb201)
    pending = [searcher.ask() for _ in range(4)]  # outstanding asks, told out of order
    for proposal in reversed(pending):
        searcher.tell(proposal, [score(proposal.arch)])
    proposals = pending + drive(searcher)
    assert len(proposals) == (searcher.n_trials or len(pending) + N_TRIALS)
    assert all(nb201.parse(str(p.arch)) == p.arch for p in proposals)  # valid points
    trials = [p.trial for p in proposals]
    assert trials[0] == 0 and trials == sorted(set(trials))  # 0-based, strictly increasing
    assert len({str(p.arch) for p in proposals}) == len(proposals)  # every proposal is new


@pytest.mark.parametrize("name", sorted(CASES))
def test_seed_reproducibility(name: str, nb201: Space) -> None:
    first = strings(drive(build(name, nb201, seed=0)))
    assert first == strings(drive(build(name, nb201, seed=0)))
    if CASES[name][2]:
        assert first != strings(drive(build(name, nb201, seed=1)))


@pytest.mark.parametrize("name", ["random", "evolution", "exhaustive"])
def test_state_dict_round_trip(name: str, nb201: Space) -> None:
    a, b = build(name, nb201), build(name, nb201, seed=123)
    drive(a, 25)
    b.load_state_dict(a.state_dict())
    assert strings(drive(a, 5)) == strings(drive(b, 5))


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"directions": ["maximise"]}, r"'maximise'; allowed: maximize, minimize"),
        ({"objectives": ["val_acc", "flops"]}, r"one of maximize, minimize for each of"),
        ({"sampler": "cmaes"}, r"sampler 'cmaes'; allowed: tpe, nsga2, gp, random"),
        ({"n_trials": None}, r"n_trials=null is only allowed"),
        ({"max_size": 1000}, r"refuses space 'nb201' with 15625 archs \(limit 1000\)"),
    ],
)
def test_config_errors(kwargs: dict, pattern: str, nb201: Space) -> None:
    cls = ExhaustiveSearcher if "max_size" in kwargs else OptunaSearcher
    with pytest.raises(SharenasError, match=pattern):
        cls(nb201, **kwargs)


@pytest.mark.parametrize("cls", [ExhaustiveSearcher, RandomSearcher])
def test_tiny_space_all_then_none(cls: type[Searcher]) -> None:
    space = TinySpace()
    searcher = cls(space, seed=3, n_trials=None)
    got = strings(drive(searcher, 10))  # all 4, no repeats (exhaustive: in the space's order)
    expected = [str(a) for a in space.enumerate()]  # already sorted
    assert (got if cls is ExhaustiveSearcher else sorted(got)) == expected
    assert searcher.ask() is None


def test_optuna_journal_resume(nb201: Space, tmp_path: Path) -> None:
    storage = str(tmp_path / "study.journal")
    first = OptunaSearcher(nb201, n_trials=10, storage=storage, study_name="resume")
    proposals = [first.ask() for _ in range(4)]
    assert [p.trial for p in proposals] == [0, 1, 2, 3]
    for proposal in proposals[:3]:  # trial 3 is never told: the run "crashed" during it
        first.tell(proposal, [score(proposal.arch)])
    again = OptunaSearcher(nb201, n_trials=10, storage=storage, study_name="resume", seed=1)
    resumed = drive(again)
    # n_trials counts distinct archs of the whole study: 3 finished, so 7 more (the crashed trial
    # was never scored and does not count); numbering continues after the stored trials.
    assert len(resumed) == 7 and min(p.trial for p in resumed) >= 4
    told = {str(p.arch) for p in proposals[:3]}
    assert not told & {str(p.arch) for p in resumed}


def test_optuna_nsga2_with_constraints(nb201: Space) -> None:
    two = {"objectives": ["val_acc", "flops"], "directions": ["maximize", "minimize"]}
    kwargs = {"sampler_kwargs": {"population_size": 10}, **two}
    searcher = OptunaSearcher(nb201, n_trials=30, sampler="nsga2", **kwargs)
    assert len(drive(searcher, 100, max_flops=4.0)) == 30
    trials = searcher.study.trials
    assert all(t.constraints == {"0": flops(nb201.make(t.params)) - 4.0} for t in trials)
    assert searcher.study.best_trials  # a Pareto front exists


def test_optuna_distributions_and_sampler(nb201: Space) -> None:
    searcher = OptunaSearcher(nb201, sampler="tpe", sampler_kwargs={"n_startup_trials": 3})
    assert {d: list(x.choices) for d, x in searcher.distributions().items()} == nb201.choices()
    assert searcher.make_sampler()._n_startup_trials == 3


def test_evolution_improves(nb201: Space) -> None:
    searcher = EvolutionSearcher(nb201, seed=0, n_trials=60, population=20, sample_size=5)
    proposals = drive(searcher, 100)
    assert len({str(p.arch) for p in proposals}) == 60  # n_trials counts distinct archs
    assert max(n_conv3(p.arch) for p in proposals) >= 4  # random search: ~2/3 of seeds
    # Minimising the negated objective is the same search.
    flipped = EvolutionSearcher(nb201, seed=0, n_trials=60, directions=["minimize"])
    assert strings(drive(flipped, 100, sign=-1.0)) == strings(proposals)


@pytest.mark.parametrize("path", sorted(CONF.glob("*.yaml")), ids=lambda p: p.stem)
def test_configs_instantiate(path: Path, nb201: Space) -> None:
    text = path.read_text()
    assert text.startswith("# ")
    defaults = OmegaConf.create(text).defaults
    assert "_schema_searcher_" in defaults[0] and defaults[-1] == "_self_"  # typed keys
    cfg = compose_config("search", [f"searcher={path.stem}"]).searcher
    searcher = hydra.utils.instantiate(cfg, space=nb201, seed=0)
    assert isinstance(searcher, Searcher)
    assert [p.trial for p in drive(searcher, 1)] == [0]


@pytest.mark.parametrize(
    ("option", "override"),
    [
        ("optuna", "searcher.n_trials=abc"),
        ("random", "searcher.n_trials=1.5"),
        ("exhaustive", "searcher.max_size=big"),
        ("evolution", "searcher.sample_size=few"),
        ("nsga2", "searcher.n_trails=3"),  # misspelt
    ],
)
def test_searcher_settings_are_typed(option: str, override: str) -> None:
    key, _, value = override.partition("=")
    with pytest.raises(ConfigCompositionException) as err:
        compose_config("search", [f"searcher={option}", override])
    text = f"{err.value} {err.value.__cause__}"
    assert key.split(".")[1] in text and (value in text or "n_trails" in key)


def test_nsga2_warns_when_the_budget_is_below_one_generation(
    nb201: Space, capsys: pytest.CaptureFixture[str]
) -> None:
    OptunaSearcher(nb201, n_trials=10, sampler="nsga2")  # Optuna's default population: 50
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning:")
    assert "n_trials=10" in err[0] and "50" in err[0] and "random search" in err[0]
    OptunaSearcher(nb201, n_trials=10, sampler="nsga2", sampler_kwargs={"population_size": 5})
    OptunaSearcher(nb201, n_trials=10, sampler="tpe")
    assert capsys.readouterr().err == ""
    cfg = compose_config("search", ["searcher=nsga2"]).searcher
    assert cfg.sampler_kwargs.population_size == 20 and cfg.n_trials == 100


def test_every_searcher_has_a_config() -> None:
    assert {p.stem for p in CONF.glob("*.yaml")} == set(SEARCHERS) | {"nsga2"}


def test_optuna_study_keeps_records_for_a_resumed_run(nb201: Space, tmp_path: Path) -> None:
    storage = str(tmp_path / "study.journal")
    first = OptunaSearcher(nb201, n_trials=10, storage=storage, study_name="records")
    told = []
    for _ in range(4):
        proposal = first.ask()
        record = {"arch": str(proposal.arch), "val_acc": score(proposal.arch), "params": 7}
        record["trial"] = proposal.trial
        first.tell(proposal, [record["val_acc"]], record=record)
        told.append(record)
    assert first.resumed_records() == []  # a new study has no earlier runs
    again = OptunaSearcher(nb201, n_trials=10, storage=storage, study_name="records", seed=1)
    assert again.resumed_records() == told  # oldest trial first, every field kept
    assert again.n_asked == 4
    fresh = OptunaSearcher(nb201, n_trials=10, storage=storage, study_name="other")
    assert fresh.resumed_records() == []


def test_optuna_study_refuses_another_checkpoint(nb201: Space, tmp_path: Path) -> None:
    storage = str(tmp_path / "study.journal")
    ours, copy, theirs = tmp_path / "a.pt", tmp_path / "copy" / "a.pt", tmp_path / "b.pt"
    ours.write_bytes(b"supernet A")
    copy.parent.mkdir()
    copy.write_bytes(b"supernet A")
    theirs.write_bytes(b"supernet B")
    first = OptunaSearcher(nb201, n_trials=5, storage=storage, study_name="bound")
    first.use_checkpoint(ours)
    drive(first, 2)
    again = OptunaSearcher(nb201, n_trials=5, storage=storage, study_name="bound")
    with pytest.raises(SharenasError) as err:
        again.use_checkpoint(theirs)
    message = str(err.value)
    assert "\n" not in message and str(ours) in message and str(theirs) in message
    again.use_checkpoint(copy)  # same bytes elsewhere: the same supernet (now named by its path)
    with pytest.raises(SharenasError, match=f"scored on supernet {copy}"):
        again.use_checkpoint(theirs)
    assert "searcher.study_name" in message and "searcher.storage" in message
    with pytest.raises(SharenasError, match="supernet.checkpoint=null"):
        again.use_checkpoint(None)
    OptunaSearcher(nb201, n_trials=5, storage=storage, study_name="new").use_checkpoint(theirs)
    OptunaSearcher(nb201, n_trials=5).use_checkpoint(theirs)  # in memory: nothing to mix
