"""from_ncps: the converted module computes what the ncps module computes (ncps==1.0.1)."""

from __future__ import annotations

import pytest
import torch

ncps_torch = pytest.importorskip("ncps.torch", reason="ncps==1.0.1 is a test-only dependency (extra 'ncps')")
ncps_wirings = pytest.importorskip("ncps.wirings")

from liquidflow.compat.ncps import from_ncps  # noqa: E402
from liquidflow.torch import LTC, CfC  # noqa: E402

I = 5


def _wiring(kind: str):
    if kind == "fc":
        return ncps_wirings.FullyConnected(8, 3)
    if kind == "ncp":
        return ncps_wirings.NCP(5, 4, 3, 3, 2, 3, 2)
    if kind == "autoncp":
        return ncps_wirings.AutoNCP(16, 4)
    raise ValueError(kind)


CASES = {
    "cfc-default": lambda: ncps_torch.CfC(I, 12),
    "cfc-no_gate": lambda: ncps_torch.CfC(I, 12, mode="no_gate"),
    "cfc-pure": lambda: ncps_torch.CfC(I, 12, mode="pure"),
    "cfc-relu-2layers-proj": lambda: ncps_torch.CfC(
        I, 10, proj_size=3, activation="relu", backbone_units=16, backbone_layers=2
    ),
    "cfc-nobackbone": lambda: ncps_torch.CfC(I, 10, backbone_layers=0),
    "cfc-mixed": lambda: ncps_torch.CfC(I, 10, mixed_memory=True),
    "wcfc-fc": lambda: ncps_torch.CfC(I, _wiring("fc")),
    "wcfc-ncp": lambda: ncps_torch.CfC(I, _wiring("ncp")),
    "wcfc-autoncp-no_gate": lambda: ncps_torch.CfC(I, _wiring("autoncp"), mode="no_gate"),
    "wcfc-autoncp-pure": lambda: ncps_torch.CfC(I, _wiring("autoncp"), mode="pure"),
    "ltc-fc": lambda: ncps_torch.LTC(I, _wiring("fc")),
    "ltc-units": lambda: ncps_torch.LTC(I, 7),
    "ltc-ncp": lambda: ncps_torch.LTC(I, _wiring("ncp")),
    "ltc-autoncp-mixed": lambda: ncps_torch.LTC(I, _wiring("autoncp"), mixed_memory=True),
}


def _perturb(module: torch.nn.Module) -> None:
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.requires_grad and ("bias" in name or name.endswith(("_b", "vleak", "w_tau"))):
                p.add_(0.2 * torch.randn_like(p))


@pytest.mark.parametrize("name", sorted(CASES))
def test_equidistant_input(name: str) -> None:
    torch.manual_seed(0)
    theirs = CASES[name]()
    _perturb(theirs)
    ours = from_ncps(theirs)
    assert isinstance(ours, (CfC, LTC))
    x = torch.randn(4, 15, I)
    y_theirs, h_theirs = theirs(x)
    y_ours, h_ours = ours(x)
    err = (y_ours - y_theirs).abs().max().item()
    assert err < 1e-5, err
    if isinstance(h_theirs, tuple):
        assert (h_ours[0] - h_theirs[0]).abs().max().item() < 1e-5
    else:
        assert (h_ours - h_theirs).abs().max().item() < 1e-5
    assert y_theirs.abs().max().item() > 1e-3


@pytest.mark.parametrize("name", sorted(CASES))
def test_irregular_input_batch_one(name: str) -> None:
    """ncps handles timespans correctly only at batch size 1: there both must agree."""
    torch.manual_seed(1)
    theirs = CASES[name]()
    _perturb(theirs)
    ours = from_ncps(theirs)
    x = torch.randn(1, 20, I)
    dt = torch.rand(1, 20) * 3 + 0.05
    y_theirs, _ = theirs(x, timespans=dt)
    y_ours, _ = ours(x, timespans=dt)
    err = (y_ours - y_theirs).abs().max().item()
    assert err < 1e-5, err


def test_batched_timespans_are_where_ncps_is_wrong() -> None:
    """The bug we fix: at batch = hidden size, ncps mixes up samples; we match per-sample runs."""
    torch.manual_seed(2)
    theirs = ncps_torch.CfC(I, 8, backbone_units=8)
    ours = from_ncps(theirs)
    x = torch.randn(8, 10, I)
    dt = torch.rand(8, 10) * 3 + 0.05
    y_batch_theirs, _ = theirs(x, timespans=dt)
    y_batch_ours, _ = ours(x, timespans=dt)
    alone = torch.cat([theirs(x[b : b + 1], timespans=dt[b : b + 1])[0] for b in range(8)])
    assert (y_batch_ours - alone).abs().max().item() < 1e-5
    assert (y_batch_theirs - alone).abs().max().item() > 1e-2


@pytest.mark.parametrize("kind", ["cfc-cell", "wired-cell", "ltc-cell"])
def test_cells(kind: str) -> None:
    torch.manual_seed(3)
    if kind == "cfc-cell":
        theirs = ncps_torch.CfCCell(I, 6)
        n = 6
    elif kind == "wired-cell":
        theirs = ncps_torch.WiredCfCCell(I, _wiring("ncp"))
        n = 12
    else:
        w = _wiring("ncp")
        w.build(I)
        theirs = ncps_torch.LTCCell(w, I)
        n = 12
    _perturb(theirs)
    ours = from_ncps(theirs)
    x, h = torch.randn(3, I), torch.randn(3, n) * 0.3
    y_theirs, h_theirs = theirs(x, h, 0.7)
    y_ours, h_ours = ours(x, h, 0.7)
    assert (y_ours - y_theirs).abs().max().item() < 1e-5
    assert (h_ours - h_theirs).abs().max().item() < 1e-5


def test_rejects_other_modules() -> None:
    with pytest.raises(TypeError, match="from_ncps expects an ncps.torch CfC, LTC"):
        from_ncps(torch.nn.LSTM(3, 4))
