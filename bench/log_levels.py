"""``quiet_loggers(names)``: raise loggers to WARNING for a measurement, then give them their levels back.

Restoring them keeps one suite from changing what the next one logs (``make bench`` runs them all in one
process).
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator


@contextlib.contextmanager
def quiet_loggers(names: Iterable[str], level: int = logging.WARNING) -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(level)
    try:
        yield
    finally:
        for logger, old in zip(loggers, levels, strict=True):
            logger.setLevel(old)
