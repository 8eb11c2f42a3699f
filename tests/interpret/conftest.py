"""Shared fixtures for the interpretability tests: one thread per worker, figures closed after each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread_and_close_figures() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small models: threads only fight over the 2 CI cores
    yield
    torch.set_num_threads(threads)
    import matplotlib.pyplot as plt

    plt.close("all")
