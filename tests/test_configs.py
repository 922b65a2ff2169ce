"""Compose every option of every config group of both root configs, and instantiate it."""

from __future__ import annotations

import json
import re

import pytest
import torch
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from search.cli import register_configs
from search.estimators import ESTIMATORS, resolve_estimator
from search.objective import Objective
from search.searchers import SEARCHERS, Proposal, Searcher
from search.study import Study
from supernet.builder import Built, build_sampler
from supernet.cli import check_key_overrides, group_options, sweep_runs
from supernet.config import check_train_config
from supernet.data import FROM_DISK, Splits
from supernet.errors import SharenasError
from supernet.models import Macro
from supernet.sampling import SAMPLERS, PathSampler
from supernet.sharing import STRATEGIES
from supernet.spaces import build_space
from tests.conftest import CONF_DIR, compose_config, write_cifar10_binary, write_image_folder

ROOTS = ("train", "search")


def root_groups(root: str) -> list[str]:
    """Config groups named in a root config's defaults list."""
    defaults = OmegaConf.to_container(OmegaConf.load(CONF_DIR / f"{root}.yaml"))["defaults"]
    groups = [next(iter(d)) for d in defaults if isinstance(d, dict)]
    return [g for g in groups if not g.startswith("override ")]  # hydra/job_logging


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
def test_compose_and_instantiate(root, group, option, tmp_path):
    extra = []
    if group == "data" and option in FROM_DISK:  # a tiny dataset written here
        write = write_image_folder if option == "imagefolder" else write_cifar10_binary
        extra = [f"data.path={write(tmp_path / option)}"]
    cfg = compose_config(root, [f"{group}={option}", *extra])
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
        proposal = Study(searcher, Objective(searcher.objectives, dict(cfg.constraints))).ask()
        assert isinstance(proposal, Proposal) and space.validate(proposal.arch) == proposal.arch
    elif group == "backend":
        backend = instantiate(cfg.backend)
        assert callable(getattr(backend, "run", None))
    elif group == "verify":
        from search.verify import check_verify, recipe

        check_verify(cfg.verify, planned=cfg.verify.top_k + cfg.verify.control)
        assert cfg.verify.enabled is (option != "off")
        assert recipe(cfg.verify).epochs == cfg.verify.recipe.epochs > 0
    elif group == "recipe":  # a preset of the other groups: every value it sets resolves
        assert set(cfg.get("recipe") or {}) <= {"split_epoch", "train_all_leaves"}
        assert resolve_estimator(cfg.evaluator.estimator, space.name) in ESTIMATORS
        strategy = instantiate(cfg.sharing, space=space, macro=macro)
        assert strategy.num_supernets == 1
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


# -- ranges the schema's types cannot express: one line naming the key and the value ----------
@pytest.mark.parametrize(
    ("override", "words"),
    [
        ("trainer.epochs=-3", "trainer.epochs must be an integer >= 1, got -3"),
        ("trainer.batch_size=0", "trainer.batch_size must be an integer >= 1, got 0"),
        ("trainer.calib_batches=0", "trainer.calib_batches"),
        ("trainer.steps_per_epoch=0", "trainer.steps_per_epoch"),
        ("trainer.grad_clip=0", "trainer.grad_clip must be a number > 0, got 0.0"),
        ("trainer.augment.crop_pad=-1", "trainer.augment.crop_pad must be an integer >= 0, got -1"),
        ("trainer.label_smoothing=1.0", "trainer.label_smoothing must be in (0, 1) (e.g. 0.1, or"),
        ("trainer.label_smoothing=-0.1", "got -0.1"),
        ("space.macro.channels=0", "space.macro.channels"),
        ("space.macro.cells_per_stage=0", "space.macro.cells_per_stage"),
        ("seed=abc", "seed must be an integer >= 0, got 'abc'"),
        ("seed=1.5", "seed must be an integer >= 0, got 1.5"),
    ],
)
def test_train_config_ranges_are_checked(override, words):
    cfg = compose_config("train", [override])
    with pytest.raises(SharenasError, match=re.escape(words)):
        check_train_config(cfg)


def test_default_train_config_passes_the_range_checks():
    check_train_config(compose_config("train", []))


@pytest.mark.parametrize(
    ("group", "kwargs", "words"),
    [
        ("fewshot", {"split_epoch": "abc"}, "sharing.split_epoch must be an integer >= 1"),
        ("fewshot", {"split_every": 0}, "sharing.split_every"),
        ("gm", {"split_epochs": 3}, "sharing.split_epochs must be a list"),
        ("gm", {"split_epochs": [0]}, "sharing.split_epochs must be an integer >= 1"),
        ("gm", {"max_splits": -1}, "sharing.max_splits"),
        ("costsplit", {"pool_size": 0}, "sharing.pool_size"),
    ],
)
def test_sharing_settings_are_checked(group, kwargs, words):
    with pytest.raises(SharenasError, match=re.escape(words)):
        STRATEGIES[group](build_space("nb201"), Macro(channels=4), **kwargs)


@pytest.mark.parametrize(
    ("name", "kwargs", "words"),
    [
        ("sandwich", {"n_random": -1}, "sampler.n_random"),
        ("cost_binned", {"bins": "x"}, "sampler.bins must be an integer >= 1, got 'x'"),
        ("progressive", {"warmup_epochs": 1.5}, "sampler.warmup_epochs"),
    ],
)
def test_sampler_settings_are_checked(name, kwargs, words):
    with pytest.raises(SharenasError, match=re.escape(words)):
        SAMPLERS[name](build_space("nb201"), cost_fn=lambda a: 1.0, **kwargs)


def test_dict_override_with_new_keys_says_how_to_set_the_mapping():
    override = "searcher.sampler_kwargs={n_startup_trials:10}"
    with pytest.raises(SharenasError, match=re.escape(f"write ++{override}")):
        check_key_overrides("search", [override])
    check_key_overrides("search", [f"++{override}"])  # the suggested form composes


def test_failed_instantiate_reads_as_one_line_with_its_cause():
    from hydra.errors import InstantiationException

    from supernet.cli import instantiation_message

    cfg = OmegaConf.create({"sharing": {"_target_": "supernet.models.macro.Macro", "bogus": 1}})
    with pytest.raises(InstantiationException) as caught:
        instantiate(cfg.sharing)
    msg = instantiation_message(caught.value)
    assert "\n" not in msg
    assert "bad value in sharing" in msg and "supernet.models.macro.Macro" in msg
    assert "TypeError" in msg and "bogus" in msg


def test_checkpoint_warnings_name_only_what_the_user_set(capsys):
    from search.checks import warn_checkpoint_overrides

    cfg = compose_config("search", ["data=mnist5k", "sampler.bins=3"])
    from supernet.builder import config_to_save

    saved = config_to_save(compose_config("search", ["sharing=gm", "sampler=fair"]))  # stored form
    warn_checkpoint_overrides(cfg, saved, overrides=["data=mnist5k"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "fixes data" in lines[0] and "data.name='mnist5k'" in lines[0]
    assert "data.pool" not in lines[0]  # the option's default, not something the user typed
    warn_checkpoint_overrides(cfg, saved, overrides=[])  # config defaults differ: not the user's
    assert capsys.readouterr().err == ""
    warn_checkpoint_overrides(cfg, saved)  # outside a Hydra app: every difference
    err = capsys.readouterr().err
    assert "fixes data" in err and "fixes sharing" in err


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["data=cifar10", "data.pth=/x"], "unknown key 'data.pth'; data has: "),
        (["trainer=gpu", "trainer.epoch=3"], "unknown key 'trainer.epoch'; trainer has: "),
    ],
)
def test_a_typo_next_to_its_group_choice_is_still_a_typo(argv, words):
    register_configs()  # the schemas the group options name (also when this test runs alone)
    with pytest.raises(SharenasError, match=re.escape(words)):
        check_key_overrides("train", argv)


def test_check_int_keeps_large_integers_exact_and_refuses_bools():
    from supernet.errors import check_int

    assert check_int("seed", 2**53 + 1) == 2**53 + 1
    assert check_int("seed", "7") == 7 and check_int("seed", 3.0) == 3
    with pytest.raises(SharenasError, match="seed must be an integer >= 0, got True"):
        check_int("seed", True)


@pytest.mark.parametrize(
    ("config", "argv", "words"),
    [
        ("search", ["search.progress=false"], "unknown key 'search'; the config has: backend, "),
        ("train", ["foo.bar=1"], "unknown key 'foo'; the config has: "),
        ("search", ["+evaluator.estimater=val_acc"], "key 'evaluator.estimater'; evaluator"),
        ("search", ["+foo=1"], "unknown key 'foo'; the config has: "),
        ("search", ["+foo.bar=1"], "unknown key 'foo'; the config has: "),
        ("search", ["+evaluatr.estimator=val_acc"], "unknown key 'evaluatr'; the config has: "),
        ("train", ["+trainer.foo=1"], "unknown key 'trainer.foo'; trainer has: amp, "),
        ("search", ["-m", "searcher.n_trials=3,abc"], "bad value for searcher.n_trials=abc"),
        ("train", ["-m", "seed=1,2", "trainer.epoch=1,2"], "unknown key 'trainer.epoch'"),
        # two unknown keys: the first is named, with what its node really has
        ("search", ["verify.top=3", "verify.epochs=1"], "unknown key 'verify.top'; verify has:"),
        ("train", ["trainer.foo=1", "verify.bar=1"], "unknown key 'trainer.foo'; trainer has:"),
        ("search", ["search.x=1", "foo.y=2"], "unknown key 'search'; the config has: backend, "),
    ],
)
def test_unknown_keys_and_bad_sweep_values_are_one_line(config, argv, words):
    """Under an unknown parent, added with +, or in a multirun's sweep: one line, not Hydra's."""
    register_configs()
    with pytest.raises(SharenasError, match=re.escape(words)) as err:
        check_key_overrides(config, argv)
    assert "\n" not in str(err.value)


def test_added_keys_of_open_mappings_user_groups_and_good_sweeps_pass(tmp_path):
    register_configs()
    check_key_overrides("search", ["+searcher.sampler_kwargs.n_startup_trials=10"])
    check_key_overrides("search", ["+searcher.sampler_kwargs.x=1", "searcher.sampler_kwargs.x=2"])
    (tmp_path / "mygroup").mkdir()
    (tmp_path / "mygroup" / "opt.yaml").write_text("x: 1\n")
    check_key_overrides("search", [f"hydra.searchpath=[file://{tmp_path}]", "+mygroup=opt"])
    check_key_overrides("search", ["+space@extra=nb201"])
    check_key_overrides("train", ["+trainer.scheduler.eta_min=0.001"])
    check_key_overrides("search", ["-m", "searcher.n_trials=3,4", "seed=range(0,3)"])
    assert sweep_runs(["a=1,2", "b=x", "c=3,4,5"]) == [
        ["b=x", "a=1", "c=3"],
        ["b=x", "a=2", "c=3"],
        ["b=x", "a=1", "c=4"],
        ["b=x", "a=1", "c=5"],
    ]
