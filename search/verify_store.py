"""Finished standalone results of a run directory, stored as each one exists, so a killed verify
resumes without retraining them: ``verify/standalone.json`` (strict JSON, rewritten atomically
after every result) and ``verify/weights/<digest>.pt`` (the first seed's trained state_dict,
written before the JSON names it)."""

from __future__ import annotations

import hashlib
import io
import json
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from supernet.fileio import write_atomic

FORMAT = 1


def data_digest(tensors: list[torch.Tensor]) -> str:
    """A short digest of the data splits a standalone result was trained and scored on."""
    h = hashlib.sha256()
    for t in tensors:
        h.update(str((tuple(t.shape), str(t.dtype))).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _digest(arch: str) -> str:
    return hashlib.sha256(arch.encode()).hexdigest()[:20]


class StandaloneStore:
    """The standalone results made with one set of ``settings`` (mode, recipe, seeds, space,
    macro, data digest and, when fine-tuning, the supernet). Results stored under other settings
    are not reused: the first new result replaces them."""

    def __init__(self, folder: str | Path, settings: dict[str, Any]) -> None:
        self.folder = Path(folder)
        self.path = self.folder / "standalone.json"
        self.settings = json.loads(json.dumps(settings))  # plain JSON values, compared as read back
        self.digest = hashlib.sha256(json.dumps(self.settings, sort_keys=True).encode()).hexdigest()
        self.digest = self.digest[:12]  # names these settings in a study's user attributes
        self.results: dict[str, dict] = {}
        if self.path.exists():
            stored = json.loads(self.path.read_text())
            if stored.get("settings") == self.settings and stored.get("format") == FORMAT:
                self.results = {
                    a: r for a, r in stored["results"].items() if self.weights_path(a).exists()
                }
            else:
                print(
                    f"verify: {self.path} was made with other settings; its results are not "
                    f"reused and will be replaced",
                    file=sys.stderr,
                )

    def __contains__(self, arch: str) -> bool:
        return arch in self.results

    def weights_path(self, arch: str) -> Path:
        return self.folder / "weights" / f"{_digest(arch)}.pt"

    def add(self, result: dict) -> dict:
        """Store one finished result (weights first, then the JSON that names them); returns it
        without its tensors."""
        result = dict(result)
        state = result.pop("state_dict")
        buf = io.BytesIO()
        torch.save(state, buf)
        write_atomic(self.weights_path(result["arch"]), lambda f: f.write(buf.getvalue()))
        self.results[result["arch"]] = result
        self._write()
        return result

    def adopt(self, result: dict) -> None:
        """Take a result stored elsewhere (a study), without weights: kept in memory, so
        ``standalone.json`` keeps naming only results whose weights this folder holds."""
        self.results[result["arch"]] = dict(result)

    def has_weights(self, arch: str) -> bool:
        return self.weights_path(arch).exists()

    def put_weights(self, arch: str, state: dict[str, torch.Tensor]) -> None:
        """Store the weights of an adopted result, then name it in ``standalone.json``."""
        buf = io.BytesIO()
        torch.save(state, buf)
        write_atomic(self.weights_path(arch), lambda f: f.write(buf.getvalue()))
        self._write()

    def _write(self) -> None:
        kept = {a: r for a, r in self.results.items() if self.has_weights(a)}
        payload = {"format": FORMAT, "settings": self.settings, "results": kept}
        text = json.dumps(payload, indent=1, sort_keys=True, allow_nan=False) + "\n"
        write_atomic(self.path, lambda f: f.write(text.encode("utf-8")))

    def weights(self, arch: str) -> dict[str, torch.Tensor]:
        """The stored state_dict of ``arch`` (tensors only: ``weights_only=True``)."""
        return torch.load(self.weights_path(arch), map_location="cpu", weights_only=True)


def _well_formed(arch: str, value: Any) -> bool:
    if not isinstance(value, dict) or value.get("arch") != arch:
        return False
    per_seed, mean = value.get("standalone_acc_per_seed"), value.get("standalone_acc")
    numbers = per_seed if isinstance(per_seed, list) else []
    return bool(numbers) and all(
        isinstance(a, int | float) and not isinstance(a, bool) and math.isfinite(a)
        for a in [*numbers, mean]
    )


def from_study(attrs: Mapping[str, Any] | None, prefix: str) -> dict[str, dict]:
    """The standalone results a persistent study holds under ``prefix`` (``verify:<settings
    digest>:``), by arch. They are data: only well-formed plain values are taken; the rest are
    skipped, and how many is said once."""
    found, bad = {}, 0
    for name, value in (attrs or {}).items():
        if name.startswith(prefix):
            arch = name[len(prefix) :]
            if _well_formed(arch, value):
                found[arch] = dict(value)
            else:
                bad += 1
    if bad:
        print(f"verify: {bad} malformed standalone results in the study skipped", file=sys.stderr)
    return found
