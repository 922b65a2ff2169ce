"""Datasets read from the user's disk: a folder of class sub-folders, and CIFAR-10's own files.

Both decode every image once into memory as float32 in [0, 1], shape (N, C, H, W), so they share
the in-memory loaders of the embedded sets; they suit datasets that fit in RAM (all of CIFAR-10
at 32x32 is 740 MB; ``data.limit`` keeps a seeded subset). Nothing is downloaded.

- ``imagefolder``: ``root/<class>/<image>`` (PNG, JPEG, BMP, ... anything Pillow opens). Classes
  are the sub-folder names in sorted order, as torchvision's ImageFolder numbers them. Every image
  is converted to RGB (or L with ``channels=1``) and resized to ``image_size`` x ``image_size``.
- ``cifar10``: the directory holding CIFAR-10's ``data_batch_1..5`` and ``test_batch`` in the
  binary version (``*.bin``, read with numpy) or the python version (pickles, read by an unpickler
  that admits only the numpy types those files hold, so a planted file cannot run code).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from supernet.errors import SharenasError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")
CIFAR_BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
CIFAR_FOLDERS = ("cifar-10-batches-bin", "cifar-10-batches-py")
CIFAR_SIDE, CIFAR_RECORD = 32, 1 + 3 * 32 * 32  # binary record: label byte + CHW pixel bytes


def _directory(path: str | None, what: str) -> Path:
    if not path:
        raise SharenasError(f"data={what} needs data.path, the directory that holds the images")
    root = Path(path).expanduser()
    if not root.is_dir():
        raise SharenasError(f"data.path {str(root)!r} is not a directory")
    return root


def load_image_folder(
    path: str | None, image_size: int = 32, channels: int = 3
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images (N, C, S, S) in [0, 1], labels (N,) and the class names of ``root/<class>/*``."""
    from PIL import Image, UnidentifiedImageError

    root = _directory(path, "imagefolder")
    if channels not in (1, 3):
        raise SharenasError(f"data.channels must be 1 or 3, got {channels}")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise SharenasError(
            f"data.path {str(root)!r} needs at least 2 class sub-folders (root/<class>/<image>), "
            f"found {len(classes)}"
        )
    images, labels = [], []
    for label, name in enumerate(classes):
        files = sorted(f for f in (root / name).rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise SharenasError(
                f"class folder {str(root / name)!r} holds no image ({', '.join(IMAGE_SUFFIXES)})"
            )
        for f in files:
            try:
                with Image.open(f) as img:
                    img = img.convert("RGB" if channels == 3 else "L")
                    img = img.resize((image_size, image_size), Image.Resampling.BILINEAR)
                    pixels = np.asarray(img, dtype=np.float32) / 255.0
            except (UnidentifiedImageError, OSError) as err:
                raise SharenasError(f"cannot read image {str(f)!r}: {err}") from None
            images.append(pixels.reshape(image_size, image_size, channels).transpose(2, 0, 1))
            labels.append(label)
    return np.stack(images), np.asarray(labels, dtype=np.int64), classes


class _NumpyOnly(pickle.Unpickler):
    """Unpickles CIFAR-10's python batches (dicts of bytes, lists and numpy arrays) and nothing
    else: any other global is refused."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing {module}.{name}")
        return super().find_class(module, name)


def _cifar_python(file: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with file.open("rb") as fh:
            batch = _NumpyOnly(fh, encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
        images = data.reshape(-1, 3, CIFAR_SIDE, CIFAR_SIDE)
    except (pickle.UnpicklingError, KeyError, TypeError, EOFError, ValueError) as err:
        raise SharenasError(f"{str(file)!r} is not a CIFAR-10 python batch: {err}") from None
    if len(images) != len(labels) or labels.ndim != 1:
        raise SharenasError(
            f"{str(file)!r} holds {len(images)} images but {labels.size} labels; every image "
            "needs one label (a damaged or truncated batch)"
        )
    return images, labels


def _cifar_binary(file: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = np.fromfile(file, dtype=np.uint8)
    if raw.size == 0 or raw.size % CIFAR_RECORD:
        raise SharenasError(
            f"{str(file)!r} is not a CIFAR-10 binary batch ({raw.size} bytes is not a multiple "
            f"of the {CIFAR_RECORD}-byte record)"
        )
    records = raw.reshape(-1, CIFAR_RECORD)
    return records[:, 1:].reshape(-1, 3, CIFAR_SIDE, CIFAR_SIDE), records[:, 0].astype(np.int64)


def load_cifar10(path: str | None) -> tuple[np.ndarray, np.ndarray]:
    """All 60,000 images (N, 3, 32, 32) in [0, 1] and labels from CIFAR-10's local batch files
    (``path`` itself or its ``cifar-10-batches-bin`` / ``cifar-10-batches-py`` sub-folder)."""
    root = _directory(path, "cifar10")
    for folder in (root, *(root / s for s in CIFAR_FOLDERS)):
        binary = [folder / f"{b}.bin" for b in CIFAR_BATCHES]
        python = [folder / b for b in CIFAR_BATCHES]
        if all(f.is_file() for f in binary):
            parts = [_cifar_binary(f) for f in binary]
            break
        if all(f.is_file() for f in python):
            parts = [_cifar_python(f) for f in python]
            break
    else:
        near = [f for f in (root, *(root / s for s in CIFAR_FOLDERS)) if f.is_dir()][-1]
        missing = [b for b in CIFAR_BATCHES if not any(near.glob(f"{b}*"))]
        raise SharenasError(
            f"no complete set of CIFAR-10 batches under {str(root)!r}: expected "
            f"{', '.join(CIFAR_BATCHES)} (binary: with .bin) there or in "
            f"{' or '.join(f + '/' for f in CIFAR_FOLDERS)}; {str(near)!r} lacks "
            f"{', '.join(missing) or 'nothing by name, but mixes the binary and python versions'}"
        )
    images = np.concatenate([p[0] for p in parts]).astype(np.float32)
    images /= 255.0  # in place: one 740 MB array, not two
    labels = np.concatenate([p[1] for p in parts])
    if labels.min() < 0 or labels.max() > 9:
        raise SharenasError(f"CIFAR-10 labels must be 0..9, found {labels.min()}..{labels.max()}")
    return images, labels
