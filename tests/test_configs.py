"""Compose every option of every config group of both root configs, and instantiate it."""

from __future__ import annotations

import json

import pytest
import torch
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from search.objective import Objective
from search.searchers import SEARCHERS, Proposal, Searcher
from supernet.builder import Built, build_sampler
from supernet.cli import group_options
from supernet.data import Splits
from supernet.networks import Macro
from supernet.sampling import SAMPLERS, PathSampler
from supernet.sharing import STRATEGIES
from supernet.spaces import build_space
from tests.conftest import CONF_DIR, compose_config

ROOTS = ("train", "search")


def root_groups(root: str) -> list[str]:
    """Config groups named in a root config's defaults list."""
    defaults = OmegaConf.to_container(OmegaConf.load(CONF_DIR / f"{root}.yaml"))["defaults"]
    return [next(iter(d)) for d in defaults if isinstance(d, dict)]


def all_groups() -> list[str]:
    return sorted(p.name for p in CONF_DIR.iterdir() if p.is_dir() and group_options(p.name))


CASES = [
    (root, group, option)
    for root in ROOTS
    for group in root_groups(root)
    for option in group_options(group)
]


def test_every_group_option_is_covered():
    assert {"space", "data", "sharing", "sampler", "trainer", "searcher", "backend"} <= set(
        all_groups()
    )
    covered = {(g, o) for _, g, o in CASES}
    for group in all_groups():
        assert any(group in root_groups(r) for r in ROOTS), f"conf/{group} is used by no root"
        for option in group_options(group):
            assert (group, option) in covered
    assert set(group_options("sharing")) == set(STRATEGIES)
    assert set(group_options("sampler")) == set(SAMPLERS)
    assert set(SEARCHERS) <= set(group_options("searcher"))


_DATA: dict[str, Splits] = {}


def data_of(cfg: DictConfig) -> Splits:
    key = json.dumps(OmegaConf.to_container(cfg.data, resolve=True), sort_keys=True)
    if key not in _DATA:
        _DATA[key] = instantiate(cfg.data)
    return _DATA[key]


@pytest.mark.parametrize(("root", "group", "option"), CASES, ids=lambda v: str(v))
def test_compose_and_instantiate(root, group, option):
    cfg = compose_config(root, [f"{group}={option}"])
    OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
    assert set(root_groups(root)) <= set(cfg)
    space = build_space(cfg.space.name)
    macro = Macro(channels=4, cells_per_stage=1)
    if group == "space":
        assert space.name == option and cfg.space.macro.channels > 0
    elif group == "data":
        splits = data_of(cfg)
        assert isinstance(splits, Splits) and splits.name == cfg.data.name
        assert min(len(splits.train), len(splits.val), len(splits.test)) > 0
        x, y = splits.train[0]
        assert x.shape == (splits.in_channels, splits.image_size, splits.image_size)
        assert 0 <= int(y) < splits.num_classes
    elif group == "sharing":
        strategy = instantiate(cfg.sharing, space=space, macro=macro)
        assert type(strategy) is STRATEGIES[option]
        assert strategy.num_supernets == 1
    elif group == "sampler":
        if "pool_size" in cfg.sampler:
            with open_dict(cfg):
                cfg.sampler.pool_size = 100  # the cost pool builds one subnet per arch
        strategy = instantiate(cfg.sharing, space=space, macro=macro)
        built = Built(space, None, macro, strategy)  # type: ignore[arg-type]
        sampler = build_sampler(cfg, built)
        assert isinstance(sampler, SAMPLERS[option]) and isinstance(sampler, PathSampler)
        paths = sampler.paths()
        assert paths and all(space.validate(a) == a for a in paths)
    elif group == "trainer":
        tc = cfg.trainer
        params = [torch.nn.Parameter(torch.zeros(3))]
        opt = instantiate(tc.optimizer)(params)
        assert isinstance(opt, torch.optim.Optimizer) and opt.param_groups[0]["params"] == params
        sched = instantiate(tc.scheduler)(opt)
        assert isinstance(sched, torch.optim.lr_scheduler.LRScheduler)
        assert sched.T_max == tc.epochs
        assert tc.epochs > 0 and tc.batch_size > 0 and tc.device in ("cpu", "cuda", "auto")
    elif group == "searcher":
        searcher = instantiate(cfg.searcher, space=space, seed=0)
        assert isinstance(searcher, Searcher)
        if option in SEARCHERS:
            assert type(searcher) is SEARCHERS[option]
        Objective(searcher.objectives, dict(cfg.constraints))
        proposal = searcher.ask()
        assert isinstance(proposal, Proposal) and space.validate(proposal.arch) == proposal.arch
    elif group == "backend":
        backend = instantiate(cfg.backend)
        assert callable(getattr(backend, "run", None))
    else:
        pytest.fail(f"no instantiation check for config group {group!r}")


@pytest.mark.parametrize("root", ROOTS)
@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("trainer.epohs=3", "epohs"),
        ("space.macro.chanels=4", "chanels"),
        ("data.val_fracton=0.1", "val_fracton"),
        ("sharing.split_epoc=2", "split_epoc"),
    ],
)
def test_misspelt_key_fails_at_compose(root, override, key):
    with pytest.raises(ConfigCompositionException) as err:
        compose_config(root, [override])
    assert key in str(err.value)


def test_misspelt_search_key_fails_at_compose():
    with pytest.raises(ConfigCompositionException) as err:
        compose_config("search", ["evaluator.cout_flops=false"])
    assert "cout_flops" in str(err.value)


@pytest.mark.parametrize(
    ("root", "override"),
    [
        ("train", "trainer.epochs=abc"),
        ("search", "trainer.epochs=abc"),
        ("train", "space.macro.channels=wide"),
        ("train", "data.val_fraction=most"),
        ("train", "trainer.progress=maybe"),
        ("search", "evaluator.count_flops=maybe"),
    ],
)
def test_wrong_type_fails_at_compose(root, override):
    key, _, value = override.partition("=")
    with pytest.raises(ConfigCompositionException) as err:
        compose_config(root, [override])
    text = f"{err.value} {err.value.__cause__}"
    assert key in text and value in text


def test_tiny_cfg_fixture_applies_overrides(tiny_cfg):
    cfg = tiny_cfg("search", ["trainer.epochs=2", "searcher=random"])
    assert cfg.trainer.epochs == 2 and cfg.space.macro.channels == 4
    assert cfg.searcher._target_.endswith("RandomSearcher") and cfg.searcher.n_trials == 5
