"""Export a ranked arch as a plain standalone network with its inherited weights."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from supernet.checkpoint import save_checkpoint


def export_subnet(
    net: nn.Module, arch: str, record: dict, input_shape: tuple[int, ...], out_dir: str | Path
) -> dict[str, Path]:
    """Write ``model.pt`` (state_dict), ``model.pt2`` (a ``torch.export`` program: load it with
    ``torch.export.load(path).module()``), ``arch.txt`` and ``record.json`` into ``out_dir``.
    ``net`` should already have recalibrated BN (eval mode)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    net = net.eval().cpu()
    paths = {
        "arch": out / "arch.txt",
        "record": out / "record.json",
        "state_dict": out / "model.pt",
        "exported": out / "model.pt2",
    }
    paths["arch"].write_text(arch + "\n")
    paths["record"].write_text(json.dumps(record, indent=1, sort_keys=True))
    torch.save(net.state_dict(), paths["state_dict"])
    example = torch.zeros((1, *input_shape))
    with torch.no_grad():
        program = torch.export.export(net, (example,))
    torch.export.save(program, paths["exported"])
    return paths


__all__ = ["export_subnet", "save_checkpoint"]
