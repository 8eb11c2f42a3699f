"""Shared fixtures for the export tests: the cases (models, inputs, PyTorch outputs) are computed
once per test run, even across pytest-xdist workers, and the emulated boards' instruction counts
are printed in the terminal summary."""

from __future__ import annotations

import pickle
import time
from pathlib import Path

import export_cases as ec
import pytest
import torch
from filelock import FileLock

REPORT_KEY = "liquidflow/export-instructions"


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
def report(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """``report(board, rows)``: keep instruction counts for the terminal summary."""

    def add(board: str, rows: dict[str, float], merge: bool = False) -> None:
        key = f"{REPORT_KEY}/{board}-{'extra' if merge else 'main'}"
        entry = request.config.cache.get(key, None) if merge else None
        start = getattr(request.config, "_lf_export_start", 0.0)
        old = entry["rows"] if entry and entry.get("time", 0) >= start else {}
        request.config.cache.set(key, {"time": time.time(), "rows": {**old, **rows}})

    return add


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config._lf_export_start = time.time()  # type: ignore[attr-defined]


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # type: ignore[no-untyped-def]
    from liquidflow.export._toolchain import BOARDS

    start = getattr(config, "_lf_export_start", 0.0)
    found = {}
    for board in BOARDS:
        for part in ("main", "extra"):
            entry = config.cache.get(f"{REPORT_KEY}/{board}-{part}", None)
            if entry and entry.get("time", 0) >= start:
                found.setdefault(board, {}).update(entry["rows"])
    if not found:
        return
    terminalreporter.section("liquidflow export: instructions per step on QEMU (TCG plugin count)")
    names = sorted({n for rows in found.values() for n in rows})
    boards = list(found)
    terminalreporter.write_line(f"{'model':44s}" + "".join(f"{b:>14s}" for b in boards))
    for n in names:
        cells = "".join(f"{found[b][n]:14,.0f}" if n in found[b] else f"{'-':>14s}" for b in boards)
        terminalreporter.write_line(f"{n:44s}{cells}")


@pytest.fixture(autouse=True)
def _one_torch_thread():  # type: ignore[no-untyped-def]
    """These tests run many tiny ops; extra threads only contend with the other xdist worker."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
