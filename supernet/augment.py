"""Training-time augmentation of whole batches: random shifts (pad and crop) and mirror flips.

``trainer.augment.crop_pad=P`` pads each image by ``P`` pixels of black and crops a window of
its own size at a random offset, as torchvision's ``RandomCrop(size, padding=P)`` does per image
(NB201's CIFAR recipe uses ``P=4`` with flips). ``trainer.augment.hflip=true`` mirrors each image
with probability 1/2, for datasets where a mirrored image keeps its label (not digits). Both are
off by default.

The batches live in memory as normalised tensors, so the work is done on the batch with one
gather, and the randomness comes from a ``torch.Generator`` of its own, seeded from the run's seed
(but not equal to it: the loader's shuffle generator has the run's seed, and two generators with
one seed draw one stream, which would tie each image's shift to its place in the shuffle). Its
state is saved in the trainer's checkpoint: a resumed run sees the same augmented batches. Only the
training step sees augmented images; BN recalibration, scoring and splitting see the originals.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from supernet.errors import SharenasError, check_int

#: added to the run's seed for the augmentation generator (any constant other than 0 would do)
SEED_OFFSET = 0x5EED_A06


class BatchAugment:
    """``augment(x)`` returns the batch ``x`` (N, C, H, W) randomly shifted and/or flipped.

    ``fill`` is the value of a black pixel in the normalised inputs, ``(0 - mean) / std``.
    """

    def __init__(self, crop_pad: int = 0, hflip: bool = False, seed: int = 0, fill: float = 0.0):
        self.crop_pad = check_int("trainer.augment.crop_pad", crop_pad, 0)
        self.hflip = bool(hflip)
        self.fill = float(fill)
        self.generator = torch.Generator().manual_seed(int(seed) + SEED_OFFSET)

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

    def get_state(self) -> torch.Tensor:
        """The generator's state, for the checkpoint."""
        return self.generator.get_state()

    def set_state(self, state: torch.Tensor) -> None:
        self.generator.set_state(state)


__all__ = ["BatchAugment"]
