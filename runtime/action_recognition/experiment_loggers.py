"""Lightning loggers of a training run: CSV always, TensorBoard when installed, W&B when configured."""
from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger("skillbank.action_recognition")
LOG_FOLDER = "lightning_logs"


def _wandb_ready() -> tuple[bool, str]:
    """(usable, why not): wandb importable and an API key in the environment or its login file."""
    if importlib.util.find_spec("wandb") is None:
        return False, "wandb is not installed"
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_MODE") in ("offline", "disabled"):
        return True, ""
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    if netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore"):
        return True, ""
    return False, "wandb is not logged in (no WANDB_API_KEY and no `wandb login`)"


def build_loggers(cfg: Any, folder: Path) -> list[Any]:
    """Loggers writing under ``<folder>/lightning_logs`` (checkpoint selection skips that folder)."""
    from pytorch_lightning.loggers import CSVLogger

    loggers: list[Any] = [CSVLogger(save_dir=str(folder), name=LOG_FOLDER)]
    tensorboard = importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX")
    if tensorboard is not None:
        from pytorch_lightning.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(save_dir=str(folder), name=LOG_FOLDER))
    if cfg.wandb.enable:
        ready, why = _wandb_ready()
        if ready:
            from pytorch_lightning.loggers import WandbLogger

            w = cfg.wandb
            loggers.append(WandbLogger(
                project=w.project, entity=w.entity or None, group=w.group or None, tags=list(w.tags),
                name=w.name, id=w.run_id or None, save_dir=str(folder), reinit=w.reinit,
                sync_tensorboard=w.sync_tensorboard, save_code=w.save_code,
            ))
        else:
            kinds = "CSV and TensorBoard" if tensorboard is not None else "CSV"
            log.info("wandb.enable is true but %s: logging locally (%s) under %s", why, kinds, folder / LOG_FOLDER)
    return loggers
