"""sharenas from Python: ``train`` and ``search`` take the command line's overrides, ``load`` reads
a trained supernet that ranks and extracts given archs.

    import sharenas
    net = sharenas.load("outputs/default/train/<run>/supernet.pt")
    best = net.rank(["|nor_conv_3x3~0|+|none~0|skip_connect~1|+|...~0|...~1|...~2|", ...])[0]
"""

from __future__ import annotations

from sharenas.api import LoadedSupernet, load, search, train

__all__ = ["LoadedSupernet", "load", "search", "train"]
