"""The one scoring function, and BN recalibration through ``torch.optim.swa_utils.update_bn``."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import TensorDataset

from supernet.bn import BatchNormCalibrator
from supernet.scoring import batches_of, score


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.LazyLinear(5)
    )


def _data(n: int = 300) -> TensorDataset:
    g = torch.Generator().manual_seed(1)
    return TensorDataset(
        torch.randn(n, 3, 6, 6, generator=g), torch.randint(0, 5, (n,), generator=g)
    )


@torch.no_grad()
def _by_hand(net: nn.Module, batches: list[torch.Tensor]) -> nn.Module:
    """The recalibration as written before update_bn: reset, cumulative average, train mode."""
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    net.train()
    for x in batches:
        net(x)
    for m in bns:
        m.momentum = 0.1
    return net.eval()


def test_update_bn_recalibrates_exactly_as_the_hand_written_loop():
    data = _data()
    calibrator = BatchNormCalibrator(data, batches=3, batch_size=64, seed=0)
    ours, ref = _net(), _net()
    ours(data.tensors[0][:2]), ref(data.tensors[0][:2])  # materialise the lazy layer alike
    ref.load_state_dict(ours.state_dict())
    calibrator(ours)
    _by_hand(ref, calibrator.batches)
    assert not ours.training
    for (name, a), b in zip(ours.state_dict().items(), ref.state_dict().values()):
        assert torch.equal(a, b), name
    assert ours[1].momentum == 0.1


def test_score_is_accuracy_and_mean_cross_entropy():
    data, net = _data(), _net()
    net(data.tensors[0][:2])
    net.eval()
    got = score(net, batches_of(data, 128))
    with torch.no_grad():
        logits = net(data.tensors[0])
    acc = 100.0 * (logits.argmax(1) == data.tensors[1]).sum().item() / len(data)
    loss = nn.functional.cross_entropy(logits, data.tensors[1]).item()
    assert abs(got.acc - acc) < 1e-9 and abs(got.loss - loss) < 1e-5
    calibrated = score(net, batches_of(data, 128), BatchNormCalibrator(data, 2, 64, 0))
    assert calibrated != got  # recalibration changed the statistics, hence the score
