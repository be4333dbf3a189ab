"""``one_torch_thread()``: run a measurement on one torch thread, then give the process its count back.

Benchmarks that compare two single-threaded paths set this; restoring it keeps one suite from changing
what the next one measures (``make bench`` runs them all in one process).
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
