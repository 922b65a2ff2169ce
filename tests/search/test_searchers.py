"""Conformance suite for every searcher, driven through the Study, plus the searcher configs."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import hydra.utils
import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from search.objective import Objective
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
from search.study import Study
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


def record(arch: Arch, sign: float = 1.0) -> dict:
    """What an evaluator would return for ``arch`` (synthetic scores)."""
    value = sign * score(arch)  # also the estimator's "score", the searchers' default objective
    return {"arch": str(arch), "val_acc": value, "score": value, "flops": flops(arch), "params": 1}


# name -> (class, extra kwargs, stochastic); optuna once per sampler, GP kept short (slow fits).
CASES: dict[str, tuple[type[Searcher], dict, bool]] = {
    name: (cls, {}, True) for name, cls in SEARCHERS.items() if cls is not OptunaSearcher
}
for sampler in SAMPLERS:
    extra = {"sampler_kwargs": {"n_startup_trials": 8}, "n_trials": 12} if sampler == "gp" else {}
    CASES[f"optuna-{sampler}"] = (OptunaSearcher, {"sampler": sampler, **extra}, True)


def drive(study: Study, n: int = N_TRIALS, sign: float = 1.0) -> list[Proposal]:
    """Up to ``n`` ask/tell rounds with the synthetic scores; returns the proposals."""
    proposals = []
    while len(proposals) < n and (proposal := study.ask()) is not None:
        study.tell(proposal, record(proposal.arch, sign))
        proposals.append(proposal)
    return proposals


def strings(proposals: list[Proposal]) -> list[str]:
    return [str(p.arch) for p in proposals]


def build(name: str, space: Space, seed: int = 0, **kw) -> Study:
    cls, extra, _ = CASES[name]
    searcher = cls(space, seed=seed, **{"n_trials": N_TRIALS, **extra, **kw})
    objectives = searcher.objectives
    return Study(searcher, Objective(objectives, kw.pop("limits", None)))


@pytest.mark.parametrize("name", sorted(CASES))
def test_conformance(name: str, nb201: Space) -> None:
    study = build(name, nb201)
    pending = [study.ask() for _ in range(4)]  # outstanding asks, told out of order
    for proposal in reversed(pending):
        study.tell(proposal, record(proposal.arch))
    proposals = pending + drive(study)
    assert len(proposals) == study.n_trials and study.ask() is None  # the budget, then no more
    assert all(nb201.parse(str(p.arch)) == p.arch for p in proposals)  # valid points
    assert len({str(p.arch) for p in proposals}) == len(proposals)  # every proposal is new
    records = study.records()
    assert [r.arch for r in records] == strings(sorted(proposals, key=lambda p: p.trial))
    assert [r.trial for r in records] == sorted(p.trial for p in proposals)
    assert study.optuna.metric_names == ["val_acc"]  # named metrics for optuna-dashboard
    trial = study.optuna.trials[records[0].trial]
    assert trial.user_attrs["val_acc"] == records[0].val_acc  # one sortable attr per field
    assert trial.user_attrs["flops"] == records[0].flops


@pytest.mark.parametrize("name", sorted(CASES))
def test_seed_reproducibility(name: str, nb201: Space) -> None:
    first = strings(drive(build(name, nb201, seed=0)))
    assert first == strings(drive(build(name, nb201, seed=0)))
    if CASES[name][2]:
        assert first != strings(drive(build(name, nb201, seed=1)))


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"directions": ["maximise"]}, r"'maximise'; allowed: maximize, minimize"),
        ({"objectives": ["val_acc", "flops"]}, r"one of maximize, minimize for each of"),
        ({"sampler": "cmaes"}, r"sampler 'cmaes'; allowed: tpe, nsga2, gp, random"),
        ({"n_trials": None}, r"n_trials=null is only allowed"),
        ({"n_trials": 0}, r"n_trials must be >= 1 or null, got 0"),
        ({"sampler_kwargs": {"n_startup": 3}}, r"sampler_kwargs \{'n_startup': 3\} do not fit"),
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
    study = Study(cls(space, seed=3, n_trials=None))
    got = strings(drive(study, 10))  # all 4, no repeats
    assert sorted(got) == [str(a) for a in space.enumerate()]
    assert study.ask() is None


def test_optuna_nsga2_with_constraints(nb201: Space) -> None:
    two = {"objectives": ["val_acc", "flops"], "directions": ["maximize", "minimize"]}
    searcher = OptunaSearcher(
        nb201, n_trials=30, sampler="nsga2", sampler_kwargs={"population_size": 10}, **two
    )
    study = Study(searcher, Objective(two["objectives"], {"flops": 4.0}))
    assert len(drive(study, 100)) == 30
    trials = [t for t in study.optuna.trials if "repeat_of" not in t.user_attrs]
    assert all(t.constraints == {"0": flops(nb201.make(t.params)) - 4.0} for t in trials)
    assert study.optuna.best_trials  # a Pareto front exists
    assert study.optuna.metric_names == ["val_acc", "flops"]


def test_evolution_improves(nb201: Space) -> None:
    searcher = EvolutionSearcher(nb201, seed=0, n_trials=60, population=20, sample_size=5)
    proposals = drive(Study(searcher), 100)
    assert len({str(p.arch) for p in proposals}) == 60  # n_trials counts distinct archs
    assert max(n_conv3(p.arch) for p in proposals) >= 4  # random search: ~2/3 of seeds
    # Minimising the negated objective is the same search.
    flipped = EvolutionSearcher(nb201, seed=0, n_trials=60, directions=["minimize"])
    assert strings(drive(Study(flipped), 100, sign=-1.0)) == strings(proposals)


def test_evolution_parents_are_feasible_members(nb201: Space) -> None:
    searcher = EvolutionSearcher(nb201, seed=0, n_trials=40, population=10, sample_size=3)
    study = Study(searcher, Objective(["val_acc"], {"flops": 2.0}))
    drive(study, 40)
    members = study.sampler.inner.members(study.optuna)
    assert len(members) == 10 and all(m.user_attrs["flops"] <= 2.0 for m in members)
    numbers = [m.number for m in members]
    assert numbers == sorted(numbers)  # aging: the most recent feasible trials


@pytest.mark.parametrize("path", sorted(CONF.glob("*.yaml")), ids=lambda p: p.stem)
def test_configs_instantiate(path: Path, nb201: Space) -> None:
    text = path.read_text()
    assert text.startswith("# ")
    defaults = OmegaConf.create(text).defaults
    assert "_schema_searcher_" in defaults[0] and defaults[-1] == "_self_"  # typed keys
    cfg = compose_config("search", [f"searcher={path.stem}"]).searcher
    searcher = hydra.utils.instantiate(cfg, space=nb201, seed=0)
    assert isinstance(searcher, Searcher) and searcher.storage is None and searcher.dedupe
    assert [p.trial for p in drive(Study(searcher), 1)] == [0]


@pytest.mark.parametrize(
    ("option", "override"),
    [
        ("optuna", "searcher.n_trials=abc"),
        ("random", "searcher.n_trials=1.5"),
        ("exhaustive", "searcher.max_size=big"),
        ("evolution", "searcher.sample_size=few"),
        ("random", "searcher.dedupe=maybe"),
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


def test_every_registered_searcher_brings_its_schema() -> None:
    from search.searchers import SearcherConf

    for name, cls in SEARCHERS.items():
        assert cls.name == name and issubclass(cls.schema, SearcherConf)
        assert cls.schema._target_ == f"search.searchers.{cls.__name__}"
        assert (CONF / f"{name}.yaml").is_file()
