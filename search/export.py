"""Export a ranked arch as a plain standalone network with its inherited weights."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from search.record import strict_dumps
from supernet.errors import SharenasError

ONNX_PACKAGES = ("onnx", "onnxscript")  # what torch.onnx.export(dynamo=True) needs


def check_onnx_available() -> None:
    """``results.onnx=true`` needs the optional ONNX packages: a one-line error when absent,
    checked before a search starts rather than after it ends."""
    missing = [name for name in ONNX_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise SharenasError(
            f"results.onnx=true needs the packages {', '.join(missing)}: "
            f"pip install 'sharenas[onnx]' (or pip install {' '.join(ONNX_PACKAGES)}), "
            "or set results.onnx=false"
        )


def export_subnet(
    net: nn.Module,
    arch: str,
    record: dict,
    input_shape: tuple[int, ...],
    out_dir: str | Path,
    normalize: Mapping[str, float] | None = None,
    onnx: bool = False,
    classes: Sequence[str] = (),
) -> dict[str, Path]:
    """Write ``model.pt2``, ``model.pt``, ``arch.txt`` and ``record.json`` into ``out_dir``, and
    ``model.onnx`` with ``onnx=True``.

    ``model.pt2`` is the file to deploy: a ``torch.export`` program with a dynamic batch
    dimension (any batch size >= 1), loaded without sharenas by
    ``torch.export.load(path).module()``. ``model.pt`` is only the ``state_dict`` of the
    standalone module; to rebuild the module itself, load the supernet checkpoint
    (``built, _ = supernet.builder.load_trained(ckpt)``), take
    ``built.strategy.extract(built.space.parse(arch))`` and ``load_state_dict`` model.pt into it
    (its BN statistics are the recalibrated ones). Prefer model.pt2.

    ``record.json`` is the evaluation record plus ``input_shape`` (C, H, W), ``normalize``
    (``{"mean", "std"}`` of the training pixels, or null if unknown): feed the model
    ``(x - mean) / std``, as during search; and ``classes``, the name of each output (logit ``i``
    is ``classes[i]``), or null if unknown. ``net`` should already have recalibrated BN.

    ``model.onnx`` (``results.onnx=true``; needs ``pip install 'sharenas[onnx]'``) is the same
    network through ``torch.onnx.export(dynamo=True)`` for ONNX Runtime and other ONNX tools:
    input ``x`` (batch, C, H, W), output ``logits`` (batch, classes), the batch dimension named
    ``batch`` and dynamic; its metadata (``metadata_props``) holds ``arch``, ``input_shape``,
    ``classes`` and ``normalize_mean`` / ``normalize_std`` (absent when unknown) as strings.
    """
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
    full = _full_record(record, input_shape, normalize, classes)
    paths["record"].write_text(strict_dumps(full, indent=1, sort_keys=True))
    torch.save(net.state_dict(), paths["state_dict"])
    example = torch.zeros((2, *input_shape))  # batch 2: a batch of 1 would be specialised
    with torch.no_grad():
        program = torch.export.export(
            net, (example,), dynamic_shapes=({0: torch.export.Dim("batch")},)
        )
    torch.export.save(program, paths["exported"])
    if onnx:
        paths["onnx"] = out / "model.onnx"
        meta = {"arch": arch, "input_shape": json.dumps(full["input_shape"])}
        if full["classes"] is not None:
            meta["classes"] = json.dumps(full["classes"])
        if full["normalize"] is not None:
            meta |= {f"normalize_{k}": repr(v) for k, v in full["normalize"].items()}
        _export_onnx(net, example, paths["onnx"], meta)
    return paths


def _full_record(
    record: Mapping, input_shape: tuple[int, ...], normalize: Mapping | None, classes: Sequence
) -> dict:
    """``record.json``: the record, ``input_shape``, ``normalize`` and ``classes`` (or None)."""
    full = {**record, "input_shape": [int(d) for d in input_shape]}
    full["normalize"] = (
        {k: float(normalize[k]) for k in ("mean", "std")} if normalize is not None else None
    )
    full["classes"] = [str(c) for c in classes] or None
    return full


def _export_onnx(net: nn.Module, example: torch.Tensor, path: Path, meta: dict[str, str]) -> None:
    """``net`` as ONNX with named input, output and batch dimension, ``meta`` as the model's
    metadata (quietly: the exporter logs each of its steps); written atomically."""
    check_onnx_available()
    import onnx

    from supernet.fileio import write_atomic

    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)  # e.g. "torchvision is not installed. Skipping ..."
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            onnx_program = torch.onnx.export(
                net,
                (example,),
                dynamo=True,
                input_names=["x"],
                output_names=["logits"],
                dynamic_shapes=({0: "batch"},),
                verbose=False,
            )
    finally:
        logger.setLevel(level)
    model = onnx_program.model_proto
    onnx.helper.set_model_props(model, meta)
    data = model.SerializeToString()
    write_atomic(path, lambda f: f.write(data))


def export_top(
    ranked: Sequence[dict],
    calibrated: Callable[[str], nn.Module],
    input_shape: tuple[int, ...],
    out_dir: str | Path,
    k: int,
    normalize: Mapping[str, float] | None = None,
    onnx: bool = False,
    classes: Sequence[str] = (),
) -> dict[str, Path]:
    """Export the ``k`` best of a leaderboard (``results.top_k``): rank 1 into ``best/``, ranks
    2..k into ``top/rank_2/`` ... ``top/rank_<k>/``, each folder as ``export_subnet`` writes it.
    Only feasible archs join ``top/``; ``best/`` holds rank 1 even when no arch is feasible (the
    leaderboard puts feasible archs first). ``calibrated(arch)`` builds an arch's network.
    Returns ``best/``'s paths plus ``"top"`` (the folder) when ranks below 1 were exported."""
    out = Path(out_dir)
    paths: dict[str, Path] = {}
    for row in ranked[: max(k, 1)]:
        n = int(row["rank"])
        if n > 1 and row.get("feasible") is False:
            break
        folder = out / "best" if n == 1 else out / "top" / f"rank_{n}"
        net = calibrated(row["arch"])
        written = export_subnet(
            net, row["arch"], row, input_shape, folder, normalize, onnx=onnx, classes=classes
        )
        if n == 1:
            paths.update(written)
        else:
            paths["top"] = out / "top"
    return paths


def normalization(splits: object) -> dict[str, float] | None:
    """``{"mean", "std"}`` of the training pixels when the data splits carry them, else None."""
    mean, std = getattr(splits, "mean", None), getattr(splits, "std", None)
    if mean is None or std is None:
        return None
    return {"mean": float(mean), "std": float(std)}


__all__ = ["check_onnx_available", "export_subnet", "export_top", "normalization"]
