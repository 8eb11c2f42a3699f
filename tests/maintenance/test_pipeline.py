"""Training and evaluation on a tiny fleet, the streaming Monitor, saving and loading."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from liquidflow.checkpoint import load_model, read_checkpoint, save_model
from liquidflow.maintenance import (
    FEATURES,
    KINDS,
    AmplitudeAlarm,
    Monitor,
    RiskModel,
    TrainConfig,
    load_risk_model,
    predict_sequences,
    run_benchmark,
    save_risk_model,
    score_metrics,
    simulate,
    split_machines,
    to_sequences,
    train_model,
)
from liquidflow.training import build_model

H = 14.0


@pytest.fixture(scope="module")
def tiny():
    df = simulate(10, 30.0, seed=3, wake_period_h=6.0, fault_prob=0.7)
    seqs = to_sequences(df, FEATURES, horizon_days=H)
    split = split_machines(seqs.ids, seed=0, val=0.2, test=0.3)
    return df, seqs, {k: seqs.subset(v) for k, v in split.items()}


@pytest.fixture(scope="module")
def trained(tiny):
    _, _, parts = tiny
    cfg = TrainConfig(epochs=1, units=8, hidden=8, window=8, chunk=32)
    return {k: train_model(k, parts["train"], parts["val"], FEATURES, horizon_days=H, config=cfg) for k in KINDS}


@pytest.mark.parametrize("kind", KINDS)
def test_each_model_trains_and_is_evaluated(tiny, trained, kind):
    _, _, parts = tiny
    res = trained[kind]
    assert res.history and np.isfinite(res.history[0]["loss"])
    risk, rul = predict_sequences(res.model, parts["test"])
    test = parts["test"]
    assert risk.shape == test.x.shape[:2]
    assert np.all((risk >= 0) & (risk <= 1)) and np.all((rul >= 0) & (rul <= res.model.rul_cap_days))
    m = score_metrics(test, test.flat(risk), 0.5, test.flat(rul), res.model.rul_cap_days)
    for key in ("auroc", "auprc", "lead_time_days", "false_alarms_per_machine_month", "rul_mae_days"):
        assert np.isfinite(m[key]), key
    assert 0 <= m["lead_time_days"] <= H
    assert m["false_alarms_per_machine_month"] <= 0.5 + 1e-9


def test_training_is_seeded(tiny):
    _, _, parts = tiny
    cfg = TrainConfig(epochs=1, hidden=8, chunk=32, seed=4)
    a = train_model("gru", parts["train"], None, FEATURES, horizon_days=H, config=cfg).model
    b = train_model("gru", parts["train"], None, FEATURES, horizon_days=H, config=cfg).model
    for (n, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items()):
        torch.testing.assert_close(p, q, rtol=0, atol=0, msg=n)


def test_liquid_model_beats_the_amplitude_alarm_lead_time():
    df = simulate(24, 45.0, seed=7, wake_period_h=4.0)
    cfg = TrainConfig(epochs=8, seed=0)
    bench = run_benchmark(df, baselines=(), config=cfg, seed=0, budget=0.5)
    liquid, alarm = bench.metrics["cfc"], bench.metrics["threshold"]
    assert liquid["failures"] >= 3
    assert liquid["lead_time_days"] > alarm["lead_time_days"] + 1.0, (liquid, alarm)


def test_benchmark_over_training_seeds_reports_mean_and_std(tiny):
    df, _, _ = tiny
    cfg = TrainConfig(epochs=1, units=8, hidden=8, window=8, chunk=32)
    one = [run_benchmark(df, baselines=("gru",), config=replace(cfg, seed=s), seed=0) for s in (0, 1)]
    both = run_benchmark(df, baselines=("gru",), config=cfg, seed=0, train_seeds=[0, 1])
    for kind in ("cfc", "gru"):
        m = both.metrics[kind]
        vals = [b.metrics[kind]["auprc"] for b in one]
        assert m["seeds"] == [0, 1] and [p["auprc"] for p in m["per_seed"]] == pytest.approx(vals)
        assert m["auprc"] == pytest.approx(np.mean(vals)) and m["auprc_std"] == pytest.approx(np.std(vals))
        assert m["parameters"] == one[0].metrics[kind]["parameters"]  # the first seed's model is kept
    text = both.table_text()
    assert f"{both.metrics['gru']['auprc']:.3f} ± {both.metrics['gru']['auprc_std']:.3f}" in text
    assert "mean ± std over training seeds [0, 1]" in text
    tuned = replace(cfg, liquid_options={"mixed_memory": True})
    b = run_benchmark(df, baselines=(), config=cfg, recipes={"cfc": tuned}, seed=0)
    assert b.models["cfc"].core_options == {"mixed_memory": True}


# ---------------------------------------------------------------------------- Monitor
def _interleaved(df: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Readings in a random order across machines, each machine's own readings still in time order."""
    rng = np.random.default_rng(seed)
    df = df.sort_values(["machine_id", "timestamp"])
    keys = rng.random(len(df))
    # a machine's k-th reading gets the k-th smallest of its random keys: its order is kept
    df = df.assign(_k=keys)
    df["_k"] = df.groupby("machine_id")["_k"].transform(lambda s: np.sort(s.to_numpy()))
    return df.sort_values("_k").drop(columns="_k")


@pytest.mark.parametrize("kind", ["cfc", "ltc", "lstm", "transformer"])
def test_monitor_one_by_one_equals_batched(tiny, trained, kind):
    df, seqs, _ = tiny
    model = trained[kind].model
    risk, rul = predict_sequences(model, seqs)
    mon = Monitor(model, threshold=0.5)
    order = _interleaved(df)
    assert order["machine_id"].iloc[:20].nunique() > 1  # machines really are interleaved
    out = mon.run(order)
    for i, mid in enumerate(seqs.ids):
        got = out[out["machine_id"] == mid]
        n = int(seqs.lengths[i])
        np.testing.assert_allclose(got["risk"].to_numpy(), risk[i, :n], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(got["rul_days"].to_numpy(), rul[i, :n], rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(out["alarm"].to_numpy(), out["risk"].to_numpy() > 0.5)


def test_monitor_rejects_out_of_order_and_repeated_timestamps(trained):
    mon = Monitor(trained["cfc"].model)
    x = np.ones(len(FEATURES))
    mon.update("M1", "2026-01-02T00:00:00", x)
    mon.update("M2", "2026-01-01T00:00:00", x)  # another machine may be behind in time
    with pytest.raises(ValueError, match=r"machine 'M1' .* is not after its previous reading \(-24 hours\)"):
        mon.update("M1", "2026-01-01T00:00:00", x)
    with pytest.raises(ValueError, match="machine 'M2' .* not after its previous reading"):
        mon.update("M2", "2026-01-01T00:00:00", x)
    with pytest.raises(ValueError, match="reading has 3 features; the model needs 10"):
        mon.update("M3", 5.0, [1.0, 2.0, 3.0])


def test_monitor_unknown_machine_starts_fresh(tiny, trained):
    df, seqs, _ = tiny
    model = trained["cfc"].model
    first = df[df["machine_id"] == seqs.ids[0]].sort_values("timestamp").head(5)
    fresh = Monitor(model).run(first)["risk"].to_numpy()
    busy = Monitor(model)
    busy.run(df[df["machine_id"] != seqs.ids[0]].sort_values(["timestamp"]).head(50))
    r = busy.update(seqs.ids[0], first["timestamp"].iloc[0], first[list(FEATURES)].iloc[0].to_numpy())
    assert r.new_machine
    assert r.risk == pytest.approx(fresh[0], rel=1e-6)
    # reset forgets the machine: the same first reading again gives the same fresh answer
    busy.reset(seqs.ids[0])
    again = busy.update(seqs.ids[0], first["timestamp"].iloc[0], first[list(FEATURES)].iloc[0].to_numpy())
    assert again.new_machine and again.risk == pytest.approx(fresh[0], rel=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_save_and_load_round_trip(tmp_path, tiny, trained, kind):
    _, seqs, _ = tiny
    model = trained[kind].model
    path = tmp_path / "m.lf"
    save_risk_model(model, path, extra={"threshold": 0.25})
    assert read_checkpoint(path)["class_name"] == "RiskModel"  # the library's one checkpoint format
    loaded, meta = load_risk_model(path)
    assert meta["threshold"] == 0.25 and loaded.get_config() == model.get_config()
    assert meta["input_names"] == list(FEATURES) and meta["horizon_days"] == H
    pre = meta["preprocessing"]
    assert pre["input_mean"] == [float(v) for v in model.input_mean.tolist()]
    assert pre["time_unit_h"] == model.time_unit_h and pre["first_dt_h"] == model.first_dt_h
    assert pre["log_features"] == [f for f, v in zip(FEATURES, model.log_mask.tolist(), strict=True) if v]
    # the same weights give the same risks before and after loading, also through the generic loader
    np.testing.assert_array_equal(predict_sequences(loaded, seqs)[0], predict_sequences(model, seqs)[0])
    generic, _ = load_model(path)
    np.testing.assert_array_equal(predict_sequences(generic, seqs)[0], predict_sequences(model, seqs)[0])
    assert Monitor(str(path)).threshold == 0.25
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="is not a liquidflow checkpoint"):
        load_risk_model(str(tmp_path / "other.pt"))


def _legacy_names(kind: str, sd: dict) -> dict:
    """The parameter names of the old maintenance RiskModel (liquidflow.maintenance/1 files)."""
    out = {}
    for name, v in sd.items():
        if name.startswith("input_"):
            name = name[len("input_") :]
        elif name.startswith("core.rnn."):
            name = "core." + name[len("core.rnn.") :]
        elif name.startswith("core.embed."):
            name = name[len("core.") :]
        elif name.startswith("core.encoder.layers.0."):
            name = "core." + name[len("core.encoder.layers.0.") :]
        out[name] = v
    if kind == "transformer":
        out["slopes"] = torch.tensor([0.5, 0.25])
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_old_maintenance_files_load_with_the_same_risks(tmp_path, tiny, trained, kind):
    _, seqs, _ = tiny
    model = trained[kind].model
    old = tmp_path / "old.pt"
    blob = {
        "format": "liquidflow.maintenance/1",
        "config": model.get_config(),
        "state_dict": _legacy_names(kind, model.state_dict()),
        "extra": {"threshold": 0.3, "budget": 0.5},
    }
    torch.save(blob, old)
    loaded, meta = load_risk_model(old)
    assert meta["threshold"] == 0.3 and meta["converted_from"] == "liquidflow.maintenance/1"
    np.testing.assert_array_equal(predict_sequences(loaded, seqs)[0], predict_sequences(model, seqs)[0])
    # a damaged old file: one line that says to retrain
    blob["state_dict"] = {}
    torch.save(blob, old)
    with pytest.raises(ValueError, match=r"liquidflow.maintenance/1\) that cannot be read: .*retrain it"):
        load_risk_model(old)


def test_a_sequence_model_is_not_a_risk_model(tmp_path):
    path = save_model(build_model("cfc", 3, 2, units=8), tmp_path / "seq.lf")
    with pytest.raises(ValueError, match=r"holds a SequenceModel \(task 'classification'\), not a failure-risk model"):
        load_risk_model(path)
    with pytest.raises(ValueError, match="not a failure-risk model"):
        Monitor(str(path))


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="unknown model kind 'rnn'; allowed: cfc, ltc, lstm, gru, transformer"):
        RiskModel("rnn", ["a"])
    df = pd.DataFrame({"machine_id": ["a", "a"], "timestamp": [1.0, 1.0], "rms": [1.0, 2.0], "rul_days": [1.0, 0.5]})
    with pytest.raises(ValueError, match="machine 'a' has two readings at the same time"):
        to_sequences(df, ["rms"])
    with pytest.raises(ValueError, match=r"readings are missing columns \['peak'\]"):
        to_sequences(df, ["rms", "peak"])
    with pytest.raises(ValueError, match="needs a 'peak' column"):
        AmplitudeAlarm(feature="peak", feature_names=["rms"]).score(to_sequences(df.iloc[:1], ["rms"]))


@pytest.mark.parametrize(
    ("kind", "options"),
    [("cfc", {"mixed_memory": True, "mode": "no_gate"}), ("ltc", {"mixed_memory": True, "ode_unfolds": 2})],
)
def test_liquid_core_options_train_save_and_load(tmp_path, tiny, kind, options):
    _, seqs, parts = tiny
    cfg = TrainConfig(epochs=1, units=8, chunk=32, liquid_options=options)
    model = train_model(kind, parts["train"], parts["val"], FEATURES, horizon_days=H, config=cfg).model
    assert model.core_options == options and model.core.mixed_memory
    if kind == "ltc":
        assert model.core.cell.ode_unfolds == 2
    path = tmp_path / "m.lf"
    save_risk_model(model, path)
    loaded, _ = load_risk_model(path)
    assert loaded.get_config()["core_options"] == options
    np.testing.assert_array_equal(predict_sequences(loaded, seqs)[0], predict_sequences(model, seqs)[0])
    with pytest.raises(ValueError, match="core_options apply to the liquid kinds"):
        RiskModel("gru", list(FEATURES), core_options={"mixed_memory": True})
