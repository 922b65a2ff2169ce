"""Training-time augmentation of whole batches: random shifts (pad and crop) and mirror flips.

``trainer.augment.crop_pad=P`` pads each image by ``P`` pixels of black and crops a window of
its own size at a random offset, as torchvision's ``RandomCrop(size, padding=P)`` does per image
(NB201's CIFAR recipe uses ``P=4`` with flips). ``trainer.augment.hflip=true`` mirrors half the
images, for datasets where a mirrored image keeps its label (not digits). Both are off by default.

The batches live in memory as normalised tensors, so the work is done on the batch with one
gather, and the randomness comes from a ``torch.Generator`` seeded by the run's seed whose state
is saved in the trainer's checkpoint: a resumed run sees the same augmented batches. Only the
training step sees augmented images; BN recalibration, scoring and splitting see the originals.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from supernet.errors import SharenasError, check_int


class BatchAugment:
    """``augment(x)`` returns the batch ``x`` (N, C, H, W) randomly shifted and/or flipped.

    ``fill`` is the value of a black pixel in the normalised inputs, ``(0 - mean) / std``.
    """

    def __init__(self, crop_pad: int = 0, hflip: bool = False, seed: int = 0, fill: float = 0.0):
        self.crop_pad = check_int("trainer.augment.crop_pad", crop_pad, 0)
        if not isinstance(hflip, bool):
            raise SharenasError(f"trainer.augment.hflip must be true or false, got {hflip!r}")
        self.hflip = hflip
        self.fill = float(fill)
        self.generator = torch.Generator().manual_seed(int(seed))

    @property
    def enabled(self) -> bool:
        return self.crop_pad > 0 or self.hflip

    def check_image_size(self, size: int) -> None:
        """A shift as large as the image would leave some crops with no image in them."""
        if self.crop_pad >= size:
            raise SharenasError(
                f"trainer.augment.crop_pad={self.crop_pad} must be smaller than the "
                f"{size}x{size} images (e.g. 1-2 for 14x14, 4 for 32x32)"
            )

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return x
        n, _, h, w = x.shape
        if self.crop_pad:
            p = self.crop_pad
            padded = F.pad(x, (p, p, p, p), value=self.fill)
            offsets = torch.randint(0, 2 * p + 1, (2, n, 1), generator=self.generator)
            rows = (offsets[0] + torch.arange(h)).to(x.device)  # (N, H)
            cols = (offsets[1] + torch.arange(w)).to(x.device)  # (N, W)
            batch = torch.arange(n, device=x.device)[:, None, None]
            # advanced indices around a slice: the result is (N, H, W, C)
            x = padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
        if self.hflip:
            flip = (torch.rand(n, generator=self.generator) < 0.5).to(x.device)
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        return x.contiguous()

    def state_dict(self) -> torch.Tensor:
        return self.generator.get_state()

    def load_state_dict(self, state: torch.Tensor) -> None:
        self.generator.set_state(state)


__all__ = ["BatchAugment"]
