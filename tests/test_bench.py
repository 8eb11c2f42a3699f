"""Smoke test of the benchmark code (tiny sizes) and exact checks of its ratio arithmetic."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest

from liquidflow import bench


def _need_ncps() -> None:
    try:
        import ncps  # noqa: F401
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("ncps==1.0.1 (the [ncps] extra) is required for the benchmark test in CI")
        pytest.skip("ncps is not installed (pip install 'liquidflow[ncps]')")


def _row(section: str, model: str, impl: str, ms: float, group: str | None = None) -> dict:
    r = bench.Result(section, model, impl, 100, 32, median_ms=ms)
    if group:
        r.extra["group"] = group
    return dataclasses.asdict(r)


def test_summary_ratios_are_ncps_over_liquidflow_and_liquidflow_over_lstm() -> None:
    results = [
        _row("train", "cfc64", "liquidflow", 5.0),
        _row("train", "cfc64", "ncps", 30.0),
        _row("train", "lstm", "torch", 2.0, group="cfc64"),
        _row("train", "gru", "torch", 1.0, group="cfc64"),
        _row("stream", "ltc_ncp", "liquidflow", 0.05),
        _row("stream", "ltc_ncp", "ncps", 0.4),
    ]
    summary = bench.summarize({"results": results})
    by = {(r["section"], r["model"]): r for r in summary}
    assert by[("train", "cfc64")]["speedup_vs_ncps"] == pytest.approx(6.0)
    assert by[("train", "cfc64")]["x_lstm"] == pytest.approx(2.5)
    assert by[("train", "cfc64")]["target_vs_ncps"] == 4.0
    assert by[("train", "cfc64")]["target_x_lstm"] == 2.5
    assert by[("stream", "ltc_ncp")]["speedup_vs_ncps"] == pytest.approx(8.0)
    assert by[("stream", "ltc_ncp")]["x_lstm"] is None  # no LSTM in that group


def test_time_group_interleaves_and_reports_medians() -> None:
    calls: list[str] = []
    s = bench.Settings(warmup=1, repeats=3, budget_s=10.0)
    stats = bench._time_group({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, s)
    assert calls == ["a", "b", "a", "b", "a", "b", "a", "b"]  # warm-up, then interleaved repeats
    assert stats["a"]["repeats"] == 3 and stats["a"]["median_ms"] >= stats["a"]["min_ms"] >= 0.0


def test_quick_run_writes_json_and_markdown(tmp_path) -> None:
    _need_ncps()
    s = bench.Settings.quick_settings(threads=1)
    s.models = ("cfc_ncp",)
    s.sections = ("train", "stream", "scaling")
    s.steps, s.stream_steps, s.scaling_t, s.repeats, s.warmup = 4, 3, (3, 6), 1, 1
    data = bench.run(s, log=lambda line: None)
    errors = [r for r in data["results"] if r["error"]]
    assert not errors, errors
    assert data["environment"]["torch_threads"] == 1
    train = {(r["model"], r["impl"]) for r in data["results"] if r["section"] == "train"}
    assert train == {
        ("cfc_ncp", "liquidflow"),
        ("cfc_ncp", "ncps"),
        ("cfc_ncp", "liquidflow-torch"),  # native C kernels off
        ("lstm", "torch"),
        ("gru", "torch"),
    }
    assert all(r["median_ms"] > 0 for r in data["results"])
    jp, mp = bench.write(data, tmp_path, "smoke")
    assert json.loads(jp.read_text())["summary"][0]["model"] == "cfc_ncp"
    md = mp.read_text()
    assert "| CfC, AutoNCP(32, 10) |" in md and "Sequence-length scaling" in md


def test_memory_measurement_sees_a_training_step() -> None:
    m = bench.measure_memory("cfc_ncp", "liquidflow", seq_len=5, batch=2, features=20, threads=1)
    assert m["peak_mb"] >= m["base_mb"] > 0 and m["delta_mb"] == pytest.approx(m["peak_mb"] - m["base_mb"])


def test_cli_rejects_unknown_model() -> None:
    with pytest.raises(SystemExit):
        bench.main(["--models", "transformer"])
