"""ncps.torch checkpoints load into the same liquidflow layer: ``layer.load_state_dict(ncps_sd)``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

ncps_torch = pytest.importorskip("ncps.torch", reason="ncps==1.0.1 is a test-only dependency (extra 'ncps')")
ncps_wirings = pytest.importorskip("ncps.wirings")

from liquidflow import wirings as lw  # noqa: E402
from liquidflow.compat.ncps_state import ncps_state_dict_to_liquidflow  # noqa: E402
from liquidflow.torch import LTC, CfC  # noqa: E402

I = 5

# name -> (ncps layer, the same liquidflow layer built from liquidflow's own classes)
CASES: dict[str, tuple[Callable[[], torch.nn.Module], Callable[[], torch.nn.Module]]] = {
    "ltc-units": (lambda: ncps_torch.LTC(I, 7), lambda: LTC(I, 7)),
    "ltc-ncp": (lambda: ncps_torch.LTC(I, ncps_wirings.NCP(5, 4, 3, 3, 2, 3, 2)),
                lambda: LTC(I, lw.NCP(5, 4, 3, 3, 2, 3, 2))),
    "ltc-autoncp-mixed": (lambda: ncps_torch.LTC(I, ncps_wirings.AutoNCP(16, 4), mixed_memory=True),
                          lambda: LTC(I, lw.AutoNCP(16, 4), mixed_memory=True)),
    "ltc-linear-mappings": (lambda: ncps_torch.LTC(I, 6, input_mapping="linear", output_mapping=None),
                            lambda: LTC(I, 6, input_mapping="linear", output_mapping=None)),
    "cfc-default": (lambda: ncps_torch.CfC(I, 12), lambda: CfC(I, 12)),
    "cfc-no_gate": (lambda: ncps_torch.CfC(I, 12, mode="no_gate"), lambda: CfC(I, 12, mode="no_gate")),
    "cfc-pure": (lambda: ncps_torch.CfC(I, 12, mode="pure"), lambda: CfC(I, 12, mode="pure")),
    "cfc-3layers-dropout-proj": (
        lambda: ncps_torch.CfC(I, 10, proj_size=3, activation="relu", backbone_units=16, backbone_layers=3,
                               backbone_dropout=0.2),
        lambda: CfC(I, 10, proj_size=3, activation="relu", backbone_units=16, backbone_layers=3,
                    backbone_dropout=0.2)),
    "cfc-nobackbone": (lambda: ncps_torch.CfC(I, 10, backbone_layers=0), lambda: CfC(I, 10, backbone_layers=0)),
    "cfc-mixed": (lambda: ncps_torch.CfC(I, 10, mixed_memory=True), lambda: CfC(I, 10, mixed_memory=True)),
    "wcfc-ncp": (lambda: ncps_torch.CfC(I, ncps_wirings.NCP(5, 4, 3, 3, 2, 3, 2)),
                 lambda: CfC(I, lw.NCP(5, 4, 3, 3, 2, 3, 2))),
    "wcfc-autoncp-pure-mixed": (
        lambda: ncps_torch.CfC(I, ncps_wirings.AutoNCP(16, 4), mode="pure", mixed_memory=True),
        lambda: CfC(I, lw.AutoNCP(16, 4), mode="pure", mixed_memory=True)),
    "wcfc-fc-no_gate": (lambda: ncps_torch.CfC(I, ncps_wirings.FullyConnected(8, 3), mode="no_gate"),
                        lambda: CfC(I, lw.FullyConnected(8, 3), mode="no_gate")),
}  # fmt: skip


def _perturb(module: torch.nn.Module) -> None:
    """Move biases off their initial values so that a mapping that drops one shows."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.requires_grad and ("bias" in name or name.endswith(("_b", "vleak", "w_tau", ".A"))):
                p.add_(0.2 * torch.randn_like(p))


def _ncps_model(name: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    theirs = CASES[name][0]().eval()
    _perturb(theirs)
    return theirs


def _state(h: torch.Tensor | tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    return h[0] if isinstance(h, tuple) else h


@pytest.mark.parametrize("name", sorted(CASES))
def test_ncps_state_dict_loads_and_matches(name: str) -> None:
    theirs = _ncps_model(name)
    torch.manual_seed(123)  # our layer starts from other weights: all of them must come from the checkpoint
    ours = CASES[name][1]().eval()
    result = ours.load_state_dict(theirs.state_dict())
    assert not result.missing_keys and not result.unexpected_keys
    x = torch.randn(3, 12, I)
    mask = torch.ones(3, 12, dtype=torch.bool)
    y_theirs, h_theirs = theirs(x)
    y_ours, h_ours = ours(x)
    assert y_theirs.abs().max().item() > 1e-3
    torch.testing.assert_close(y_ours, y_theirs, atol=1e-5, rtol=0)
    torch.testing.assert_close(_state(h_ours), _state(h_theirs), atol=1e-5, rtol=0)
    # batch 1 with irregular time: where ncps's timespans are right, both agree
    dt = torch.rand(1, 12) * 2 + 0.1
    torch.testing.assert_close(ours(x[:1], timespans=dt, mask=mask[:1])[0], theirs(x[:1], timespans=dt)[0],
                               atol=1e-5, rtol=0)  # fmt: skip


def test_ncps_checkpoint_file_loads_without_ncps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    theirs = _ncps_model("ltc-autoncp-mixed")
    theirs_cfc = _ncps_model("wcfc-ncp", seed=1)
    torch.save(theirs.state_dict(), tmp_path / "ltc.pt")
    torch.save({"rnn": theirs_cfc.state_dict()}, tmp_path / "cfc.pt")
    x = torch.randn(2, 9, I)
    expected, expected_cfc = theirs(x)[0], theirs_cfc(x)[0]
    for mod in [m for m in sys.modules if m == "ncps" or m.startswith("ncps.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "ncps", None)  # import ncps now raises ImportError
    with pytest.raises(ImportError):
        import ncps  # noqa: F401
    ours = LTC(I, lw.AutoNCP(16, 4), mixed_memory=True).eval()
    ours.load_state_dict(torch.load(tmp_path / "ltc.pt", weights_only=True))
    torch.testing.assert_close(ours(x)[0], expected, atol=1e-5, rtol=0)
    # inside a user's model: the layer's prefix is kept
    model = torch.nn.Module()
    model.rnn = CfC(I, lw.NCP(5, 4, 3, 3, 2, 3, 2)).eval()
    sd = {f"rnn.{k}": v for k, v in torch.load(tmp_path / "cfc.pt", weights_only=True)["rnn"].items()}
    model.load_state_dict(sd)
    torch.testing.assert_close(model.rnn(x)[0], expected_cfc, atol=1e-5, rtol=0)


def test_own_state_dict_still_loads() -> None:
    torch.manual_seed(0)
    a, b = CfC(I, 6), CfC(I, 6)
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 4, I)
    torch.testing.assert_close(a(x)[0], b(x)[0])


def test_unknown_ncps_key_is_named() -> None:
    sd = _ncps_model("ltc-units").state_dict()
    sd["rnn_cell.extra"] = torch.zeros(3)
    with pytest.raises(RuntimeError, match=r"ncps checkpoint.*unknown ncps keys: rnn_cell\.extra"):
        LTC(I, 7).load_state_dict(sd)


def test_missing_ncps_key_is_named() -> None:
    sd = _ncps_model("cfc-default").state_dict()
    del sd["rnn_cell.ff2.weight"]
    with pytest.raises(RuntimeError, match=r"missing ncps keys: rnn_cell\.ff2\.weight") as info:
        CfC(I, 12).load_state_dict(sd)
    assert "cell.f1.weight" in str(info.value)  # torch's own message names our key too


def test_wrong_layer_kind_is_refused() -> None:
    sd = _ncps_model("cfc-default").state_dict()
    with pytest.raises(RuntimeError, match=r"unknown ncps keys: .*rnn_cell\.ff1\.weight.*missing ncps keys: "
                                           r".*rnn_cell\.gleak"):  # fmt: skip
        LTC(I, 12).load_state_dict(sd)


def test_other_wiring_graph_is_refused() -> None:
    sd = _ncps_model("ltc-ncp").state_dict()
    with pytest.raises(RuntimeError, match=r"rnn_cell\.sparsity_mask \(the wiring's graph\) differs"):
        LTC(I, lw.NCP(5, 4, 3, 3, 2, 3, 2, seed=7)).load_state_dict(sd)


def test_strict_false_reports_like_torch() -> None:
    theirs = _ncps_model("cfc-default")
    sd = theirs.state_dict()
    sd["rnn_cell.extra"] = torch.zeros(2)
    del sd["rnn_cell.time_b.bias"]
    ours = CfC(I, 12)
    before = ours.cell.time_b.bias.detach().clone()
    result = ours.load_state_dict(sd, strict=False)
    assert result.unexpected_keys == ["rnn_cell.extra"]
    assert result.missing_keys == ["cell.time_b.bias"]
    torch.testing.assert_close(ours.cell.time_b.bias.detach(), before)  # left as it was
    torch.testing.assert_close(ours.cell.f1.weight.detach(), theirs.rnn_cell.ff2.weight.detach())
    torch.testing.assert_close(ours.cell.time_a.bias.detach(), -theirs.rnn_cell.time_a.bias.detach())


def test_float64_layer_loads_float32_checkpoint() -> None:
    theirs = _ncps_model("cfc-default")
    ours = CfC(I, 12).double().eval()
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(2, 6, I)
    y = ours(x.double())[0]
    assert y.dtype == torch.float64
    torch.testing.assert_close(y.float(), theirs(x)[0], atol=1e-5, rtol=0)


def test_explicit_constraints_checkpoint_converts() -> None:
    """An ncps LTC built with implicit_param_constraints=False stores positive values, not raw ones:
    the checkpoint alone cannot say so, hence the explicit conversion."""
    torch.manual_seed(4)
    theirs = ncps_torch.LTC(I, 6, implicit_param_constraints=False).eval()
    ours = LTC(I, 6).eval()
    ours.load_state_dict(ncps_state_dict_to_liquidflow(theirs.state_dict(), ours, implicit_param_constraints=False))
    x = torch.randn(2, 7, I)
    torch.testing.assert_close(ours(x)[0], theirs(x)[0], atol=1e-5, rtol=0)


def test_cell_conversion_is_strict() -> None:
    from liquidflow.torch import CfCCell

    torch.manual_seed(5)
    theirs = ncps_torch.CfCCell(I, 6)
    ours = CfCCell(I, 6)
    ours.load_state_dict(ncps_state_dict_to_liquidflow(theirs.state_dict(), ours))
    x, h = torch.randn(3, I), torch.randn(3, 6)
    torch.testing.assert_close(ours(x, h, 0.5)[1], theirs(x, h, 0.5)[1], atol=1e-5, rtol=0)
    with pytest.raises(KeyError, match="unknown ncps keys: gleak"):
        ncps_state_dict_to_liquidflow({**theirs.state_dict(), "gleak": torch.zeros(6)}, ours)


def test_copies_of_a_layer_load_into_themselves() -> None:
    """The hook is bound to the module it was registered on, also after deepcopy."""
    import copy

    theirs = _ncps_model("cfc-default")
    torch.manual_seed(9)
    original = CfC(I, 12).eval()
    before = original.cell.f1.weight.detach().clone()
    clone = copy.deepcopy(original)
    clone.load_state_dict(theirs.state_dict())
    x = torch.randn(2, 5, I)
    torch.testing.assert_close(clone(x)[0], theirs(x)[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(original.cell.f1.weight.detach(), before)


def test_mixed_naming_is_refused() -> None:
    sd = _ncps_model("cfc-default").state_dict()
    sd["cell.f1.bias"] = torch.zeros(12)
    with pytest.raises(RuntimeError, match=r"mixes ncps names \(rnn_cell\.\*\) with liquidflow names: cell\.f1\.bias"):
        CfC(I, 12).load_state_dict(sd, strict=False)
