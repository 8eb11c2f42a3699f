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


def test_configs_summary_checks_each_goal() -> None:
    from liquidflow.bench import configs

    def row(model: str, impl: str, ms: float, **extra: str) -> dict:
        r = _row("configs", model, impl, ms)
        r["extra"].update(extra)
        return r

    results = [
        row("cfc64", "liquidflow", 5.0, path="native"),
        row("cfc64", "ncps", 50.0),
        row("lstm", "torch", 2.0, group="cfc64"),
        row("cfc64_pure", "liquidflow", 12.0, path="loop"),
        row("cfc64_pure", "ncps", 40.0),
        row("ltc_ncp", "liquidflow", 10.0, path="native"),
        row("ltc_ncp_rk4", "liquidflow", 75.0, path="native"),  # rk4: 4 stages, goal 8x
    ]
    by = {r["key"]: r for r in configs.summarize_configs(results)}
    assert by["cfc64"]["speedup_vs_ncps"] == pytest.approx(10.0) and by["cfc64"]["ncps_ok"] is True
    assert by["cfc64"]["x_lstm"] == pytest.approx(2.5) and by["cfc64"]["x_base"] is None
    assert by["cfc64_pure"]["x_base"] == pytest.approx(2.4) and by["cfc64_pure"]["base_ok"] is False
    assert by["cfc64_pure"]["ncps_ok"] is False  # 40 / 12 = 3.3 < 4
    assert by["ltc_ncp_rk4"]["goal_x_base"] == 8.0 and by["ltc_ncp_rk4"]["base_ok"] is True
    assert by["ltc_ncp_rk4"]["speedup_vs_ncps"] is None  # ncps has no rk4
    md = "\n".join(configs.markdown_configs(results))
    assert "| CfC(20, 64, mode='pure') | loop | 12.0 | 40.0 | 3.33 ✗ | 2.40 (≤ 2) ✗ |" in md


def test_configs_build_every_row_and_write_the_doc_block(tmp_path) -> None:
    import torch

    from liquidflow.bench import configs

    x = torch.randn(2, 3, 20)
    for config in configs.CONFIGS:  # every row builds and runs in liquidflow
        model = configs.build(config, "liquidflow", 20)
        out = model(x.double() if config.float64 else x)[0]
        assert torch.isfinite(out).all(), config.key
    doc = tmp_path / "perf.md"
    doc.write_text("intro\n<!-- bench:configs -->\nold table\n<!-- /bench:configs -->\nafter\n")
    assert configs.write_doc(["## new", "| a |"], doc)
    assert doc.read_text() == "intro\n<!-- bench:configs -->\n## new\n| a |\n<!-- /bench:configs -->\nafter\n"
    (tmp_path / "plain.md").write_text("no block\n")
    assert not configs.write_doc(["x"], tmp_path / "plain.md")
    with pytest.raises(SystemExit):
        bench.main(["--configs", "cfc_unknown"])
