"""Where the configs are, and composing them from Python with the scripts' checks."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig

from supernet.errors import SharenasError


def conf_dir() -> Path:
    """The shipped configs: ``sharenas/conf`` inside an installed wheel (package data), else the
    checkout's top-level ``conf/`` (the same files: the wheel maps that folder into the package)."""
    here = Path(__file__).resolve().parent
    packaged = here / "conf"
    return packaged if packaged.is_dir() else here.parent / "conf"


def compose(config_name: str, overrides: Sequence[str] = ()) -> DictConfig:
    """``conf/<config_name>.yaml`` with command-line style overrides, as ``sharenas-train`` /
    ``sharenas-search`` compose it: a bad option or key raises ``SharenasError`` in one line.
    ``hydra.searchpath=[file:///my/conf]`` adds the user's own config folders."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from search.cli import register_configs
    from supernet.cli import check_group_overrides, check_key_overrides

    overrides = [str(o) for o in overrides]
    register_configs()
    check_group_overrides(overrides, conf_dir())
    check_key_overrides(config_name, overrides, conf_dir())
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=overrides)


def default_out_dir(cfg: DictConfig, what: str, overrides: Sequence[str] = ()) -> Path:
    """Where the scripts would write this run: the ``hydra.run.dir=DIR`` among ``overrides``
    (quotes removed, ``~`` expanded, ``${now:...}`` and the config's keys resolved), else
    ``outputs/<experiment>/<what>/<date_time>``."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.utils import setup_globals
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    given = [str(o) for o in overrides if str(o).lstrip("+").startswith("hydra.run.dir=")]
    if not given:
        stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
        return Path("outputs") / str(cfg.get("experiment", "default")) / what / stamp
    try:
        value = OverridesParser.create().parse_override(given[-1]).value()
    except Exception:  # noqa: BLE001 - not Hydra's grammar (e.g. ~): the text as it is
        value = given[-1].split("=", 1)[1]
    setup_globals()  # Hydra's resolvers (now, ...)
    try:
        value = OmegaConf.create({"dir": value}, parent=cfg).dir
    except OmegaConfBaseException as err:  # e.g. ${hydra:...}: Hydra's own config is not here
        raise SharenasError(
            f"{given[-1]}: cannot resolve it from Python ({type(err).__name__}); pass out_dir="
        ) from None
    return Path(str(value)).expanduser()
