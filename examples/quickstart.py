"""Quickstart: LTC and CfC on irregularly sampled, variable-length sequences.

    .venv/bin/python examples/quickstart.py

Fits a wired CfC (AutoNCP) to predict the phase velocity of sines observed at random times, then
shows the conventions: per-sample timespans, masks for padding, state carry-over and streaming.
"""

from __future__ import annotations

import torch

from liquidflow.torch import LTC, CfC
from liquidflow.wirings import AutoNCP


def make_batch(n: int, steps: int, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
    dt = torch.rand(n, steps, generator=gen) * 0.3 + 0.02  # irregular sampling
    t = dt.cumsum(1)
    freq = torch.rand(n, 1, generator=gen) + 0.5
    x = torch.stack([torch.sin(freq * t), torch.cos(freq * t)], -1)  # (n, steps, 2)
    lengths = torch.randint(steps // 2, steps + 1, (n,), generator=gen)
    mask = torch.arange(steps)[None, :] < lengths[:, None]  # variable lengths, padded
    return x, dt, mask, freq


def main() -> None:
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    model = CfC(2, AutoNCP(16, 1))  # 16 neurons, 1 motor neuron = the prediction
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for it in range(80):
        x, dt, mask, freq = make_batch(32, 40, gen)
        y, _ = model(x, timespans=dt, mask=mask)  # (64, 40, 1), zero at padded steps
        err = (y[..., 0] - freq) * mask  # the frequency, estimated at every observed step
        loss = err.pow(2).sum() / mask.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if it % 20 == 0 or it == 79:
            print(f"step {it:3d}  mse {loss.item():.4f}")

    # state carry-over: two chunks equal the whole sequence
    x, dt, mask, _ = make_batch(4, 40, gen)
    whole, _ = model(x, timespans=dt)
    first, h = model(x[:, :20], timespans=dt[:, :20])
    second, _ = model(x[:, 20:], h, timespans=dt[:, 20:])
    print("chunked == whole:", torch.allclose(torch.cat([first, second], 1), whole, atol=1e-6))

    # streaming, one reading at a time (e.g. on a gateway)
    state = None
    for t in range(5):
        y_t, state = model.step(x[:, t], state, dt=dt[:, t])
    print("streamed 5 steps, output", tuple(y_t.shape))

    ltc = LTC(2, AutoNCP(16, 1), solver="semi_implicit", ode_unfolds=6)
    y, h = ltc(x, timespans=dt, mask=mask)
    print("LTC output", tuple(y.shape), "state", tuple(h.shape))


if __name__ == "__main__":
    main()
