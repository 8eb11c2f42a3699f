"""``liquidflow demo``: the main job on built-in data (placeholder until the maintenance demo lands)."""

from __future__ import annotations

import typer


def demo(epochs: int = typer.Option(30, help="training epochs"), seed: int = typer.Option(0, help="random seed")) -> None:
    """Train a small CfC on an irregularly sampled synthetic task and print its test accuracy."""
    import torch

    from liquidflow.torch import CfC

    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)

    def make(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # label: does a sine of random frequency, observed at random times, complete > 1 period?
        dt = torch.rand(n, 32, generator=g) * 0.2 + 0.02
        t = dt.cumsum(1)
        freq = torch.rand(n, 1, generator=g) * 0.8 + 0.1
        x = torch.sin(2 * torch.pi * freq * t).unsqueeze(-1)
        y = (freq[:, 0] * t[:, -1] > 1.0).long()
        return x, dt, y

    xtr, dtr, ytr = make(2048)
    xte, dte, yte = make(512)
    model = CfC(1, 16, proj_size=2, return_sequences=False, backbone_units=32)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for epoch in range(epochs):
        for i in range(0, len(xtr), 128):
            out, _ = model(xtr[i : i + 128], timespans=dtr[i : i + 128])
            loss = torch.nn.functional.cross_entropy(out, ytr[i : i + 128])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        acc = (model(xte, timespans=dte)[0].argmax(-1) == yte).float().mean().item()
    typer.echo(f"CfC test accuracy on the irregular sine-period task: {acc:.3f}")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
