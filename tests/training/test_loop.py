"""train_loop (the in-memory loop of maintenance and robustness) and the baselines' streaming options."""

from __future__ import annotations

import pytest
import torch

from liquidflow.training import DtGRU, DtLSTM, DtTransformer, LoopConfig, train_loop


def _regression(seed: int = 0):  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 3, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]])
    return x, y


def test_train_loop_fits_and_keeps_the_best_validated_epoch() -> None:
    x, y = _regression()
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    scores = iter([0.1, 0.9, 0.2, 0.3, 0.4, 0.5])  # best at epoch 1, then patience 2 stops at epoch 3
    seen: list[torch.Tensor] = []

    def validate(m: torch.nn.Module) -> float:
        seen.append(m.weight.detach().clone())
        return next(scores)

    res = train_loop(
        model,
        lambda epoch: [(x[i : i + 16], y[i : i + 16]) for i in range(0, 64, 16)],
        lambda m, b: (torch.nn.functional.mse_loss(m(b[0]), b[1]), float(len(b[0]))),
        LoopConfig(epochs=6, lr=0.05, patience=2),
        validate=validate,
    )
    assert res.best_epoch == 1 and res.best_score == 0.9 and len(res.history) == 4
    torch.testing.assert_close(model.weight, seen[1], rtol=0, atol=0)  # the best epoch's weights
    assert res.history[0]["loss"] > res.history[-1]["loss"]
    # the epoch loss is the weighted mean of the items' losses
    assert res.history[0]["val_score"] == 0.1


def test_train_loop_per_step_cosine_matches_torch() -> None:
    x, y = _regression(1)
    torch.manual_seed(0)
    a = torch.nn.Linear(3, 1)
    b = torch.nn.Linear(3, 1)
    b.load_state_dict(a.state_dict())
    batches = [(x[i : i + 16], y[i : i + 16]) for i in range(0, 64, 16)]
    cfg = LoopConfig(epochs=3, lr=0.05, optimizer="adamw", schedule_interval="step", steps_per_epoch=4,
                     eta_min_fraction=0.05, gradient_clip=1.0, restore_best=False)  # fmt: skip
    train_loop(a, lambda e: batches, lambda m, bt: (torch.nn.functional.mse_loss(m(bt[0]), bt[1]), 1.0), cfg)
    opt = torch.optim.AdamW(b.parameters(), lr=0.05)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=12, eta_min=0.05 * 0.05)
    for _ in range(3):
        for xb, yb in batches:
            opt.zero_grad()
            torch.nn.functional.mse_loss(b(xb), yb).backward()
            torch.nn.utils.clip_grad_norm_(b.parameters(), 1.0)
            opt.step()
            sched.step()
    torch.testing.assert_close(a.state_dict(), b.state_dict(), rtol=0, atol=0)


def test_loop_config_names_bad_values() -> None:
    with pytest.raises(ValueError, match="optimizer must be 'adam' or 'adamw'; got 'sgd'"):
        LoopConfig(optimizer="sgd")
    with pytest.raises(ValueError, match="schedule_interval='step' needs steps_per_epoch"):
        LoopConfig(schedule_interval="step")
    with pytest.raises(ValueError, match="patience must be None or >= 1; got 0"):
        LoopConfig(patience=0)


def _stream(n: int = 3, t: int = 11, f: int = 4):  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(5)
    return torch.randn(n, t, f, generator=g), torch.rand(n, t, generator=g) * 3 + 1.1


@pytest.mark.parametrize(
    "make",
    [
        lambda: DtLSTM(4, 8, dt_input="log"),
        lambda: DtGRU(4, 8),
        lambda: DtTransformer(
            4, 8, num_layers=1, num_heads=2, dt_input="log", time_encoding="alibi", window=4, final_norm=False
        ),
        lambda: DtTransformer(4, 8, num_layers=2, num_heads=2, time_encoding="alibi", window=5),
    ],
    ids=["lstm-log", "gru", "alibi", "alibi-2-layers"],
)
def test_streaming_baselines_chunked_and_stepwise_equal_whole(make) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    layer = make().eval()
    x, ts = _stream()
    with torch.no_grad():
        whole, _ = layer(x, timespans=ts)
        a, state = layer(x[:, :6], timespans=ts[:, :6])
        b, _ = layer(x[:, 6:], hx=state, timespans=ts[:, 6:])
        torch.testing.assert_close(torch.cat([a, b], 1), whole, rtol=1e-5, atol=1e-6)
        state, steps = None, []
        for t in range(x.shape[1]):
            y, state = layer.step(x[:, t], state, ts[:, t])
            steps.append(y)
        torch.testing.assert_close(torch.stack(steps, 1), whole, rtol=1e-5, atol=1e-6)
    clone = type(layer).from_config(layer.get_config()).eval()
    clone.load_state_dict(layer.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(clone(x, timespans=ts)[0], whole, rtol=0, atol=0)


def test_log_dt_input_is_the_log_of_the_linear_one() -> None:
    torch.manual_seed(0)
    lin = DtGRU(4, 8).eval()
    log = DtGRU(4, 8, dt_input="log").eval()
    log.load_state_dict(lin.state_dict())
    x, ts = _stream()
    with torch.no_grad():
        torch.testing.assert_close(log(x, timespans=ts)[0], lin(x, timespans=torch.log(ts))[0], rtol=0, atol=0)


def test_baseline_options_name_bad_values() -> None:
    with pytest.raises(ValueError, match=r"dt_input must be one of \['linear', 'log'\]; got 'sqrt'"):
        DtLSTM(3, 4, dt_input="sqrt")
    with pytest.raises(ValueError, match="time_encoding must be 'sinusoid' or 'alibi'; got 'rope'"):
        DtTransformer(3, 8, time_encoding="rope")
    with pytest.raises(ValueError, match="time_encoding='alibi' needs a window"):
        DtTransformer(3, 8, time_encoding="alibi")
    with pytest.raises(ValueError, match="step needs time_encoding='alibi'"):
        DtTransformer(3, 8).step(torch.zeros(1, 3), None, torch.ones(1))
    with pytest.raises(ValueError, match=r"step takes x \(B, 3\) and dt \(B,\); got \(1, 2\)"):
        DtGRU(3, 4).step(torch.zeros(1, 2), None, torch.ones(1))
