"""Conformance suite every sharing strategy (``supernet.sharing.STRATEGIES``) must pass."""

from __future__ import annotations

import copy
import random
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from supernet.builder import load_trained
from supernet.checkpoint import load_checkpoint, save_checkpoint
from supernet.data import load_splits
from supernet.errors import SharenasError
from supernet.leaf import PARAMS_KEY
from supernet.models import Macro
from supernet.sharing import STRATEGIES, SharingStrategy, SplitContext
from supernet.spaces import build_space
from supernet.training import train

# Keyword arguments that schedule a split at epoch 1 (cheap gradient probes for gm).
KWARGS = {
    "full": {},
    "fewshot": {"split_epoch": 1},
    "gm": {"split_epochs": [1], "samples_per_choice": 2},
    "costsplit": {"split_epoch": 1, "pool_size": 200},
    # any conflict counts (threshold 1), after 2 probes of a pair; one probe per step
    "adaptive": {"probe_every": 1, "samples_per_choice": 1, "threshold": 1.0, "patience": 2},
}
SPLIT_EPOCH = 1
N_ARCHS = 20


def close(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


def test_every_strategy_has_test_kwargs():
    assert set(STRATEGIES) == set(KWARGS) == {"full", "fewshot", "gm", "costsplit", "adaptive"}
    for name, cls in STRATEGIES.items():
        assert issubclass(cls, SharingStrategy) and cls.name == name


@pytest.fixture(scope="module")
def space():
    return build_space("nb201")


@pytest.fixture(scope="module")
def digits():
    splits = load_splits("digits")
    xs, ys = splits.train.tensors
    batches = [(xs[i : i + 32], ys[i : i + 32]) for i in (0, 32)]
    return SimpleNamespace(splits=splits, batches=batches, x=splits.val.tensors[0][:16])


def make(name: str, space, seed: int = 0) -> SharingStrategy:
    torch.manual_seed(seed)
    return STRATEGIES[name](space, Macro(channels=4), **KWARGS[name])


def warm_up(strategy, space, x) -> None:
    rng = random.Random(0)
    strategy.train()
    with torch.no_grad():
        for _ in range(3):
            strategy(x, space.sample(rng))
            strategy(x, space.largest())


def context(digits, epoch: int = SPLIT_EPOCH, logs: list | None = None) -> SplitContext:
    return SplitContext(
        epoch=epoch,
        loss_fn=lambda m, xb, yb: nn.functional.cross_entropy(m(xb), yb),
        batches=digits.batches,
        rng_seed=0,
        log=(logs.append if logs is not None else lambda _: None),
    )


def observe(strategy, digits, steps: int = 12) -> None:
    """What the trainer does between two epoch ends: a probe every ``probe_every`` steps."""
    for step in range(1, steps + 1):
        if strategy.probe_every and step % strategy.probe_every == 0:
            strategy.probe(replace(context(digits), step=step))


def outputs(strategy, archs, x) -> list[torch.Tensor]:
    with torch.no_grad():
        return [strategy(x, a) for a in archs]


@pytest.fixture(scope="module", params=sorted(STRATEGIES))
def split_case(request, space, digits):
    """A strategy with trained-looking BN stats, before and after its scheduled split."""
    name = request.param
    strategy = make(name, space)
    warm_up(strategy, space, digits.x)
    strategy.eval()
    rng = random.Random(1)
    archs = [space.largest(), space.smallest()] + [space.sample(rng) for _ in range(N_ARCHS - 2)]
    before = outputs(strategy, archs, digits.x)
    state_before = copy.deepcopy(strategy.state_dict())
    observe(strategy, digits)
    assert all(torch.equal(v, state_before[k]) for k, v in strategy.state_dict().items()), name
    logs: list[str] = []
    pairs = strategy.maybe_split(context(digits, logs=logs))
    modes_after = [m.training for m in strategy.modules() if isinstance(m, _BatchNorm)]
    strategy.eval()
    return SimpleNamespace(
        name=name,
        strategy=strategy,
        archs=archs,
        before=before,
        state_before=state_before,
        pairs=pairs,
        logs=logs,
        modes_after=modes_after,
    )


# -- (a) a split changes no arch's output -------------------------------------------------------
def test_split_keeps_every_output(split_case, digits):
    s = split_case.strategy
    if split_case.name == "full":
        assert split_case.pairs == []
        assert s.num_supernets == 1 and s.leaves == [{}] and s.history == []
        after = s.state_dict()
        assert after.keys() == split_case.state_before.keys()
        assert all(torch.equal(after[k], v) for k, v in split_case.state_before.items())
    else:
        assert s.num_supernets >= 2, f"{split_case.name} did not split at its scheduled epoch"
        assert len(s.leaves) == s.num_supernets
        assert s.history and s.history[-1]["epoch"] == SPLIT_EPOCH
        assert split_case.pairs and split_case.logs
        params = {id(p) for p in s.parameters()}
        for new, src in split_case.pairs:
            assert new is not src and id(new) in params
            assert torch.equal(new, src)
    for arch, ref, out in zip(
        split_case.archs, split_case.before, outputs(s, split_case.archs, digits.x), strict=True
    ):
        torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-6, msg=f"{arch} changed")


def test_split_preserves_train_eval_mode(split_case):
    """``maybe_split`` on a strategy in eval mode leaves its BatchNorms in eval mode, so outputs
    right after a split (say at the last epoch, then evaluation) still use running stats."""
    modes, name = split_case.modes_after, split_case.name
    assert modes, f"{name} has no BatchNorm modules"
    assert not any(modes), (
        f"{name}: maybe_split left {sum(modes)} of {len(modes)} BatchNorm modules in training mode"
    )


def test_sub_supernets_share_no_storage(split_case):
    s = split_case.strategy
    seen: set[int] = set()
    for sub in s.supernets:
        ptrs = {t.data_ptr() for t in sub.state_dict().values()}
        assert not ptrs & seen
        seen |= ptrs


def test_no_split_off_schedule(space, digits):
    for name in STRATEGIES:
        strategy = make(name, space)
        for epoch in (SPLIT_EPOCH + 1, SPLIT_EPOCH + 2):
            assert strategy.maybe_split(context(digits, epoch=epoch)) == [], name
        assert strategy.num_supernets == 1 and strategy.leaves == [{}], name


def test_extract_equals_forward(split_case, digits):
    """After its split, every strategy's extracted net computes exactly its forward."""
    s = split_case.strategy
    for arch in split_case.archs[:6]:
        net = s.extract(arch).eval()
        with torch.no_grad():
            close(net(digits.x), s(digits.x, arch))


def test_same_seed_same_strategy(split_case, space, digits):
    """Built, probed and split twice with the same seed: the same partition, history and
    weights (a strategy owns no hidden randomness)."""
    twin = make(split_case.name, space)
    warm_up(twin, space, digits.x)
    twin.eval()
    observe(twin, digits)
    twin.maybe_split(context(digits))
    s = split_case.strategy
    assert twin.sharing_state() == s.sharing_state()
    mine, theirs = s.state_dict(), twin.state_dict()
    assert mine.keys() == theirs.keys()
    assert all(torch.equal(mine[k], theirs[k]) for k in mine), split_case.name


# -- (b) routing ---------------------------------------------------------------------------------
def owns(leaf, arch, supernet) -> bool:
    """Membership written out independently of ``supernet.leaf.contains``."""
    for key, allowed in leaf.items():
        if key == PARAMS_KEY:
            if not allowed[0] <= supernet.param_count(arch) < allowed[1]:
                return False
        elif arch[key] not in allowed:
            return False
    return True


def test_route_is_deterministic_and_respects_leaves(split_case, space):
    s = split_case.strategy
    twin = copy.deepcopy(s)
    used = set()
    for arch in space.enumerate():  # the leaves partition the whole space
        index = s.route(arch)
        owners = [i for i, leaf in enumerate(s.leaves) if owns(leaf, arch, s.supernets[-1])]
        assert owners == [index], (str(arch), s.leaves)
        assert s.route(arch) == index == twin.route(arch)
        used.add(index)
    assert used == set(range(s.num_supernets))
    for arch in split_case.archs:
        assert s.supernet_for(arch) is s.supernets[s.route(arch)]


# -- (c) checkpoint round trip -----------------------------------------------------------------
def test_checkpoint_round_trip(split_case, space, digits, tmp_path):
    s = copy.deepcopy(split_case.strategy)
    with torch.no_grad():  # distinct weights per sub-supernet, so a mix-up would show
        for k, sub in enumerate(s.supernets):
            for p in sub.parameters():
                p.add_(0.03 * (k + 1))
    path = save_checkpoint(
        tmp_path / "strategy.pt",
        {
            "space": space.name,
            "config": {},
            "sharing": s.sharing_state(),
            "model": s.state_dict(),
            "epoch": SPLIT_EPOCH,
        },
    )
    payload = load_checkpoint(path, space=space.name)
    assert torch.load(path, weights_only=True)["sharing"] == payload["sharing"]
    fresh = make(split_case.name, space, seed=123)
    fresh.load_sharing_state(payload["sharing"])
    fresh.load_state_dict(payload["model"])
    fresh.eval()
    assert type(fresh) is type(s)
    assert fresh.leaves == s.leaves and fresh.history == s.history
    assert fresh.num_supernets == s.num_supernets
    for arch, ref, out in zip(
        split_case.archs,
        outputs(s, split_case.archs, digits.x),
        outputs(fresh, split_case.archs, digits.x),
        strict=True,
    ):
        assert fresh.route(arch) == s.route(arch)
        close(out, ref)


# -- (d) gm splits during real training ------------------------------------------------------
def test_gm_splits_during_training(tiny_cfg, tmp_path):
    cfg = tiny_cfg(
        "train",
        [
            "sharing=gm",
            "trainer.epochs=2",
            "sharing.split_epochs=[1]",
            "sharing.samples_per_choice=1",
        ],
    )
    metrics = train(cfg, out_dir=tmp_path)
    assert metrics["num_supernets"] >= 2
    payload = load_checkpoint(tmp_path / "supernet.pt", space="nb201")
    sharing = payload["sharing"]
    assert sharing["name"] == "gm"
    assert sharing["history"] and sharing["history"][0]["epoch"] == 1
    assert payload["metrics"]["num_supernets"] >= 2 and len(sharing["leaves"]) >= 2
    built, _ = load_trained(tmp_path / "supernet.pt", space="nb201")
    assert built.strategy.num_supernets == len(sharing["leaves"])
    assert built.strategy.leaves == sharing["leaves"]


# -- (e) costsplit: the ranges ----------------------------------------------------------------
def test_costsplit_ranges_cover_every_size_in_order(space):
    strategy = STRATEGIES["costsplit"](space, Macro(channels=4), bins=4, pool_size=300)
    ranges = [leaf[PARAMS_KEY] for leaf in strategy.cost_ranges()]
    assert 2 <= len(ranges) <= 4
    assert ranges[0][0] == 0 and ranges[-1][1] == float("inf")
    assert all(a[1] == b[0] and a[0] < a[1] for a, b in zip(ranges, ranges[1:], strict=False))
    sizes = {strategy.param_count(a) for a in (space.smallest(), space.largest())}
    assert all(any(lo <= n < hi for lo, hi in ranges) for n in sizes)


@pytest.mark.parametrize(
    ("kwargs", "words"), [({"bins": 1}, "bins"), ({"split_epoch": 0}, "split_epoch")]
)
def test_costsplit_rejects_bad_settings(space, kwargs, words):
    with pytest.raises(SharenasError, match=words):
        STRATEGIES["costsplit"](space, Macro(channels=4), **kwargs)


def test_gm_splitting_its_own_new_child_names_a_source_that_existed_before(space, digits):
    strategy = STRATEGIES["gm"](
        space, Macro(channels=4), split_epochs=[1], splits_per_epoch=2, max_splits=2
    )
    before = {id(p) for p in strategy.parameters()}

    def last_leaf_first(index, leaf, decision, ctx, rng):  # the second split takes the new child
        allowed = leaf.get(decision, space.choices()[decision])
        return (-index, [allowed[:1], allowed[1:]]) if len(allowed) > 1 else None

    strategy._score = last_leaf_first
    pairs = strategy.maybe_split(context(digits))
    assert strategy.num_supernets == 3 and [h["leaf"] for h in strategy.history] == [0, 1]
    grandchildren = list(strategy.supernets[2].parameters())
    assert {id(c) for c, _ in pairs} == {id(p) for p in strategy.parameters()} - before
    assert {id(src) for _, src in pairs} <= before
    for child, src in zip(grandchildren, strategy.supernets[0].parameters(), strict=True):
        assert any(c is child and s is src for c, s in pairs)
