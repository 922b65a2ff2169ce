"""export_top: which ranked archs get a folder, and where."""

from __future__ import annotations

import json

import torch
from torch import nn

from search.export import export_top


def tiny_net(arch: str) -> nn.Module:
    torch.manual_seed(len(arch))
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).eval()


def test_infeasible_archs_stay_out_of_top(tmp_path):
    ranked = [
        {"rank": 1, "arch": "a", "val_acc": 90.0, "feasible": True},
        {"rank": 2, "arch": "bb", "val_acc": 80.0, "feasible": True},
        {"rank": 3, "arch": "ccc", "val_acc": 95.0, "feasible": False},
    ]
    paths = export_top(ranked, tiny_net, (1, 8, 8), tmp_path, k=3)
    assert (tmp_path / "best" / "arch.txt").read_text().strip() == "a"
    assert sorted(p.name for p in (tmp_path / "top").iterdir()) == ["rank_2"]
    record = json.loads((tmp_path / "top" / "rank_2" / "record.json").read_text())
    assert record["arch"] == "bb" and record["rank"] == 2
    assert paths["top"] == tmp_path / "top" and paths["arch"] == tmp_path / "best" / "arch.txt"


def test_top_k_of_one_exports_only_best(tmp_path):
    ranked = [{"rank": 1, "arch": "a", "val_acc": 1.0}, {"rank": 2, "arch": "b", "val_acc": 0.5}]
    paths = export_top(ranked, tiny_net, (1, 8, 8), tmp_path, k=1)
    assert (tmp_path / "best" / "model.pt2").is_file() and not (tmp_path / "top").exists()
    assert "top" not in paths
