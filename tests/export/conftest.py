"""Shared fixtures for the export tests: the cases (models, inputs, PyTorch outputs) are computed
once per test run, even across pytest-xdist workers, and the emulated boards' instruction counts
are printed in the terminal summary (when pytest loads this conftest in the main process: always
with ``pytest tests/export``; with a bare ``pytest -n 2`` only if the root conftest loads it)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import export_cases as ec
import pytest
import torch
from filelock import FileLock

REPORT_PREFIX = ec.REPORT_PREFIX


def _shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.getbasetemp()
    # under xdist each worker has its own basetemp below a shared parent
    return root.parent if root.name.startswith("popen-gw") else root


@pytest.fixture(scope="session")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ec.Case]:
    shared = _shared_dir(tmp_path_factory)
    data = shared / "export-cases.pkl"
    with FileLock(str(data) + ".lock"):
        if data.exists():
            arrays = pickle.loads(data.read_bytes())
        else:
            threads = torch.get_num_threads()
            torch.set_num_threads(1)  # tiny ops: threads only add overhead
            try:
                built = {n: ec.make_case(n) for n in ec.NAMES}
            finally:
                torch.set_num_threads(threads)
            arrays = {n: (c.x, c.dt, c.y) for n, c in built.items()}
            data.write_bytes(pickle.dumps(arrays))
    return {n: ec.Case(n, ec.make_model(n), x, dt, y) for n, (x, dt, y) in arrays.items()}


@pytest.fixture(scope="session")
def report(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """``report(board, rows)``: keep instruction counts for the terminal summary (a JSON file per board
    in the run's shared temporary folder, so it works across xdist workers)."""
    shared = _shared_dir(tmp_path_factory)

    def add(board: str, rows: dict[str, float]) -> None:
        path = shared / f"{REPORT_PREFIX}{board}.json"
        with FileLock(str(path) + ".lock"):
            old = json.loads(path.read_text()) if path.exists() else {}
            path.write_text(json.dumps({**old, **rows}))

    return add


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # type: ignore[no-untyped-def]
    ec.print_instruction_summary(terminalreporter, config)


@pytest.fixture(autouse=True)
def _one_torch_thread():  # type: ignore[no-untyped-def]
    """These tests run many tiny ops; extra threads only contend with the other xdist worker."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
