"""Checks of liquidflow.keras on ONE Keras backend (KERAS_BACKEND is fixed per process).

Not collected by the main test run (the name does not start with ``test_``): tests/keras/test_keras.py
runs this file once per backend in a subprocess, ``KERAS_BACKEND=<backend> python -m pytest
tests/keras/_backend_checks.py``. If LIQUIDFLOW_PARITY_JSON is set, the largest parity errors are
written there.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: reference.py, helpers.py

import keras
import liquidflow.keras as lk
from helpers import ALL_LAYERS, INPUT_SIZE, LAYERS, make_layer, random_batch, reference_run
from liquidflow.compat.keras_torch import keras_from_torch, keras_to_torch, torch_from_keras, torch_to_keras
from liquidflow.torch import LTC as TorchLTC
from liquidflow.torch import CfC as TorchCfC
from liquidflow.wirings import NCP, AutoNCP, FullyConnected, Random

BACKEND = keras.backend.backend()
PARITY: dict[str, float] = {}

# The canonical first program of the Keras front end (issue 3), verbatim.
CANONICAL_PROGRAM = """\
import tensorflow as tf
from liquidflow.tf import LTC
from liquidflow.wirings import AutoNCP

wiring = AutoNCP(32, 10)          # 32 units, 10 motor (output) neurons
model = tf.keras.models.Sequential([
    tf.keras.layers.InputLayer(input_shape=(None, 20)),   # variable-length sequences, 20 features
    LTC(wiring, return_sequences=True),
    tf.keras.layers.Dense(1),
])
model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate=0.01), loss="mean_squared_error")
model.summary()
"""


@pytest.fixture(scope="session", autouse=True)
def _write_parity() -> Any:
    yield
    path = os.environ.get("LIQUIDFLOW_PARITY_JSON")
    if path:
        Path(path).write_text(json.dumps({"backend": BACKEND, "max_abs_error": PARITY}, indent=1))


def _record(key: str, err: float) -> None:
    PARITY[key] = max(PARITY.get(key, 0.0), float(err))


def npy(x: Any) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(x))


def max_err(a: Any, b: Any) -> float:
    a = npy(a) if not isinstance(a, torch.Tensor) else a.detach().numpy()
    b = npy(b) if not isinstance(b, torch.Tensor) else b.detach().numpy()
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def toy_regression(n: int = 32, t: int = 10, f: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, t, f)).astype("float32")
    return x, np.tanh(x[..., :1]).astype("float32")


# ------------------------------------------------------------------------------------ parity
@pytest.mark.parametrize("name", list(LAYERS))
def test_parity_with_torch_float32(name: str) -> None:
    """Same weights, random input, random per-sample timespans: keras == torch within 1e-5."""
    tl = make_layer(name, torch.float32, seed=1)
    kl = keras_from_torch(tl, return_state=True)
    x, dt, _ = random_batch(3, 7, torch.float32, seed=2)
    y_t, h_t = tl(x, timespans=dt)
    y_k, *h_k = kl([x.numpy(), dt.numpy()])
    err = max_err(y_k, y_t)
    h_t = list(h_t) if isinstance(h_t, tuple) else [h_t]
    for a, b in zip(h_k, h_t, strict=True):
        err = max(err, max_err(a, b))
    _record(f"keras-vs-torch float32 {name}", err)
    assert err < 1e-5


@pytest.mark.parametrize("name", list(LAYERS))
def test_matches_numpy_reference_float64(name: str) -> None:
    """A float64 Keras layer against tests/reference.py, with a mask and an initial state."""
    tl = make_layer(name, torch.float64, seed=3)
    kl = keras_from_torch(tl, return_state=True)
    assert kl.dtype_policy.name == "float64"
    x, dt, mask = random_batch(3, 6, torch.float64, seed=4, masked=True)
    gen = torch.Generator().manual_seed(5)
    h0 = 0.3 * torch.randn(3, tl.state_size, generator=gen, dtype=torch.float64)
    hx: Any = (h0, 0.1 * h0) if tl.mixed_memory else h0
    y_ref, h_ref, _ = reference_run(tl, x, dt, mask, hx)
    init = [h.numpy() for h in hx] if isinstance(hx, tuple) else [hx.numpy()]
    y_k, *h_k = kl([x.numpy(), dt.numpy()], mask=mask.numpy(), initial_state=init)
    err = max(max_err(y_k, y_ref), max_err(h_k[0], h_ref))
    _record(f"keras-vs-reference float64 {name}", err)
    # On JAX (and partly torch) Keras 3 computes some float64 ops in float32 (dtypes.result_type maps
    # float64 to float32 there); liquidflow routes float64 products through einsum, which keeps
    # float64 on torch but not on JAX.
    assert err < (1e-6 if BACKEND == "jax" else 1e-9)


@pytest.mark.parametrize("name", ["ltc-ncp", "cfc-mixed-proj", "wcfc-autoncp"])
def test_weights_round_trip_keras_to_torch(name: str) -> None:
    tl = make_layer(name, torch.float32, seed=6)
    kl = keras_from_torch(tl)
    # perturb the keras weights, copy back into a fresh torch layer, compare outputs
    for v in kl.trainable_weights:
        v.assign(npy(v) + 0.01)
    t2 = torch_from_keras(kl)
    x, dt, _ = random_batch(2, 5, torch.float32, seed=7)
    y_t, _ = t2(x, timespans=dt)
    assert max_err(kl([x.numpy(), dt.numpy()]), y_t) < 1e-5
    t3 = make_layer(name, torch.float32, seed=8)
    keras_to_torch(kl, t3)
    assert max_err(t3(x, timespans=dt)[0], y_t) == 0.0


def test_weight_exchange_rejects_mismatches() -> None:
    tl = TorchCfC(INPUT_SIZE, 5, backbone_units=8)
    with pytest.raises(ValueError, match="mode"):
        torch_to_keras(tl, lk.CfC(5, mode="pure", backbone_units=8))
    with pytest.raises(ValueError, match="backbone_layers"):
        torch_to_keras(tl, lk.CfC(5, backbone_layers=2, backbone_units=8))
    wired = TorchCfC(INPUT_SIZE, NCP(4, 3, 2, 2, 2, 2, 2, seed=1))
    with pytest.raises(ValueError, match="different wiring graphs"):
        torch_to_keras(wired, lk.CfC(NCP(4, 3, 2, 2, 2, 2, 2, seed=2)))
    with pytest.raises(TypeError, match="cannot pair"):
        torch_to_keras(wired, lk.LTC(NCP(4, 3, 2, 2, 2, 2, 2, seed=1)))


# --------------------------------------------------------------------------------- semantics
def test_masking_layer_by_value() -> None:
    """A Masking layer pads steps: outputs there are 0, the state is carried, last output = last observed."""
    tl = make_layer("ltc-ncp", torch.float32, seed=9)
    x, dt, mask = random_batch(4, 8, torch.float32, seed=10, masked=True)
    xm = np.where(mask.numpy()[..., None], x.numpy(), 0.0).astype("float32")
    for return_sequences in (True, False):
        kl = keras_from_torch(tl, return_sequences=return_sequences, return_state=True)
        inp = keras.Input((None, INPUT_SIZE))
        ts = keras.Input((None,))
        y = kl([keras.layers.Masking(0.0)(inp), ts])
        model = keras.Model([inp, ts], y)
        y_k, h_k = model([xm, dt.numpy()])
        tl.return_sequences = return_sequences
        y_t, h_t = tl(torch.from_numpy(xm), timespans=dt, mask=mask)
        assert max_err(y_k, y_t) < 1e-5
        assert max_err(h_k, h_t) < 1e-5
        if return_sequences:
            assert np.all(npy(y_k)[~mask.numpy()] == 0.0)
    tl.return_sequences = True


def test_stateful_two_chunks_equal_whole() -> None:
    tl = make_layer("cfc-mixed-proj", torch.float32, seed=11)
    x, dt, _ = random_batch(2, 8, torch.float32, seed=12)
    whole = keras_from_torch(tl)
    y_whole = npy(whole([x.numpy(), dt.numpy()]))
    kl = keras_from_torch(tl, stateful=True, batch_size=2)
    inp, ts = keras.Input(batch_shape=(2, None, INPUT_SIZE)), keras.Input(batch_shape=(2, None))
    model = keras.Model([inp, ts], kl([inp, ts]))
    y1 = npy(model([x[:, :5].numpy(), dt[:, :5].numpy()]))
    y2 = npy(model([x[:, 5:].numpy(), dt[:, 5:].numpy()]))
    assert max_err(np.concatenate([y1, y2], 1), y_whole) < 1e-5
    kl.reset_state()
    assert all(np.all(npy(s) == 0.0) for s in kl.states)
    assert max_err(model([x[:, :5].numpy(), dt[:, :5].numpy()]), y1) < 1e-6


def test_go_backwards_and_bidirectional_by_value(tmp_path: Path) -> None:
    tl = make_layer("wcfc-autoncp", torch.float32, seed=13)
    x, dt, _ = random_batch(3, 6, torch.float32, seed=14)
    xr, dtr = torch.flip(x, [1]), torch.flip(dt, [1])
    back = keras_from_torch(tl, go_backwards=True)
    y_t, _ = tl(xr, timespans=dtr)
    # go_backwards: the layer reads the steps last to first, each with its own timespan
    assert max_err(back([x.numpy(), dt.numpy()]), y_t) < 1e-5
    bi = keras.layers.Bidirectional(lk.CfC(AutoNCP(10, 3, seed=1), return_sequences=True))
    y_bi = npy(bi([x.numpy(), dt.numpy()]))
    fwd, bwd = torch_from_keras(bi.forward_layer), torch_from_keras(bi.backward_layer)
    expected = torch.cat([fwd(x, timespans=dt)[0], torch.flip(bwd(xr, timespans=dtr)[0], [1])], -1)
    assert max_err(y_bi, expected) < 1e-5
    # and a Bidirectional model saves and loads
    inp, ts = keras.Input((None, INPUT_SIZE)), keras.Input((None,))
    model = keras.Model([inp, ts], bi([inp, ts]))
    model.save(tmp_path / "bi.keras")
    assert max_err(keras.models.load_model(tmp_path / "bi.keras")([x.numpy(), dt.numpy()]), y_bi) == 0.0


def test_errors_name_the_problem() -> None:
    layer = lk.LTC(6, return_sequences=True)
    with pytest.raises(ValueError, match=r"3-D \(batch, time, features\); got shape \(5, 3\)"):
        layer(np.zeros((5, 3), "float32"))
    with pytest.raises(ValueError, match=r"timespans must have shape \(batch, time\)"):
        layer([np.zeros((2, 5, 3), "float32"), np.ones((2, 4), "float32")])
    layer(np.zeros((2, 5, 3), "float32"))
    with pytest.raises(ValueError, match="input has 4 features"):
        layer(np.zeros((2, 5, 4), "float32"))
    with pytest.raises(ValueError, match="unknown solver 'rk5'"):
        lk.LTC(4, solver="rk5")
    with pytest.raises(ValueError, match="mode must be one of"):
        lk.CfC(4, mode="fancy")
    with pytest.raises(ValueError, match="cannot be used with a wiring"):
        lk.CfC(AutoNCP(8, 2), backbone_units=4)
    with pytest.raises(TypeError, match="units must be"):
        lk.LTC("eight")


CELLS = {
    "ltc": lambda: lk.LTCCell(Random(6, 2, 0.3, random_seed=4)),
    "ltc-rk4": lambda: lk.LTCCell(FullyConnected(5, 2), solver="rk4"),
    "cfc": lambda: lk.CfCCell(5, backbone_units=7, backbone_layers=2),
    "cfc-pure": lambda: lk.CfCCell(5, mode="pure", backbone_layers=0),
    "wired-cfc": lambda: lk.WiredCfCCell(AutoNCP(8, 3, seed=2)),
}


@pytest.mark.parametrize("kind", list(CELLS))
def test_cell_in_plain_keras_rnn_matches_layer(kind: str) -> None:
    """The cells follow the Keras cell contract: keras.layers.RNN(cell) == the torch layer with dt = 1.

    A cell's ``call`` (one step from raw input) runs ``precompute`` on that step and ``step_pre``, the
    pieces the sequence layers run over a whole sequence; this checks them in the plain Keras loop.
    """
    cell = CELLS[kind]()
    rnn = keras.layers.RNN(cell, return_sequences=True)
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
    y_rnn = rnn(x)
    if isinstance(cell, lk.LTCCell):
        tl = TorchLTC(3, cell.wiring, return_sequences=True, solver=cell.solver)
    elif isinstance(cell, lk.WiredCfCCell):
        tl = TorchCfC(3, cell.wiring, mode=cell.mode, return_sequences=True)
    else:
        tl = TorchCfC(3, 5, mode=cell.mode, backbone_units=cell.backbone_units, backbone_layers=cell.backbone_layers)
    keras_to_torch(cell, tl.cell)
    assert max_err(y_rnn, tl(torch.from_numpy(x))[0]) < 1e-5


def _keras_gradients(layer: Any, x: np.ndarray, args: dict[str, Any], loss: Any) -> list[Any]:
    """Gradients of loss(layer outputs) w.r.t. [x, *layer.trainable_variables] on this backend."""
    variables = layer.trainable_variables
    if BACKEND == "tensorflow":
        import tensorflow as tf

        xv = tf.Variable(x)
        with tf.GradientTape() as tape:
            value = loss(layer([xv, args["dt"]], mask=args["mask"], initial_state=args["init"]))
        return list(tape.gradient(value, [xv, *variables]))
    xt = torch.tensor(x, requires_grad=True)
    value = loss(layer([xt, args["dt"]], mask=args["mask"], initial_state=args["init"]))
    return list(torch.autograd.grad(value, [xt, *[v.value for v in variables]]))


@pytest.mark.skipif(BACKEND == "jax", reason="gradients through keras.Layer.stateless_call are not written for JAX")
@pytest.mark.parametrize("name", list(LAYERS))
def test_gradients_match_torch_float64(name: str) -> None:
    """Gradients w.r.t. the input and every weight equal those of the torch layer (float64, masked,
    with an initial state): the state-independent terms are computed before the loop, and their
    gradients must still reach every weight and every step."""
    from liquidflow.compat.keras_torch import _checked, _pairs

    tl = make_layer(name, torch.float64, seed=21)
    kl = keras_from_torch(tl, return_state=True)
    x, dt, mask = random_batch(3, 5, torch.float64, seed=22, masked=True)
    gen = torch.Generator().manual_seed(23)
    h0 = 0.3 * torch.randn(3, tl.state_size, generator=gen, dtype=torch.float64)
    hx: Any = (h0, 0.1 * h0) if tl.mixed_memory else h0
    xt = x.clone().requires_grad_(True)
    y_t, h_t = tl(xt, timespans=dt, mask=mask, hx=hx)
    h_t = h_t[0] if isinstance(h_t, tuple) else h_t
    ry = torch.randn(y_t.shape, generator=gen, dtype=torch.float64)
    rh = torch.randn(h_t.shape, generator=gen, dtype=torch.float64)
    (ry * y_t).sum().add((rh * h_t).sum()).backward()

    ry_k, rh_k = keras.ops.convert_to_tensor(ry.numpy()), keras.ops.convert_to_tensor(rh.numpy())

    def loss(out: Any) -> Any:
        return keras.ops.sum(out[0] * ry_k) + keras.ops.sum(out[1] * rh_k)

    init = [h.numpy() for h in hx] if isinstance(hx, tuple) else [hx.numpy()]
    args = {"dt": dt.numpy(), "mask": mask.numpy(), "init": init}
    g_x, *g_w = _keras_gradients(kl, x.numpy(), args, loss)
    err = max_err(g_x, xt.grad)
    by_variable = {id(v): g for v, g in zip(kl.trainable_variables, g_w, strict=True)}
    compared = 0
    for t, k, transpose, _ in _checked(_pairs(tl, kl)):
        if id(k) not in by_variable or not t.requires_grad:
            continue
        g_t = torch.zeros_like(t) if t.grad is None else t.grad
        err = max(err, max_err(by_variable[id(k)], g_t.T if transpose else g_t))
        compared += 1
    assert compared >= 3
    _record(f"keras-vs-torch gradients float64 {name}", err)
    assert err < 1e-9


def test_plain_rnn_loop_fallback_gives_the_same_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without ``keras.src.backend.rnn`` the layers run keras.layers.RNN's own loop over the cell's
    one-step ``call``: same values (masked, backwards, mixed memory), only slower."""
    import contextlib

    import liquidflow.keras._layers as layers_module

    def loop() -> Any:  # on torch the loop, not the kernels the torch backend runs by default
        if BACKEND != "torch":
            return contextlib.nullcontext()
        from liquidflow.keras._torch_kernels import use_path

        return use_path("loop")

    for name in ("ltc-mixed-proj", "cfc-mixed-proj", "wcfc-autoncp"):
        tl = make_layer(name, torch.float64, seed=24)
        x, dt, mask = random_batch(3, 6, torch.float64, seed=25, masked=True)
        for go_backwards in (False, True):
            kl = keras_from_torch(tl, return_state=True, go_backwards=go_backwards)
            with loop():
                fast = [npy(v) for v in kl([x.numpy(), dt.numpy()], mask=mask.numpy())]
                with monkeypatch.context() as m:
                    m.setattr(layers_module, "_backend_rnn", None)
                    plain = [npy(v) for v in kl([x.numpy(), dt.numpy()], mask=mask.numpy())]
            for a, b in zip(fast, plain, strict=True):
                assert max_err(a, b) < 1e-12


def test_backbone_dropout_only_in_training() -> None:
    layer = lk.CfC(6, backbone_layers=2, backbone_units=8, backbone_dropout=0.5, return_sequences=True)
    x = np.random.default_rng(1).normal(size=(4, 5, 3)).astype("float32")
    y_eval = npy(layer(x, training=False))
    assert np.array_equal(y_eval, npy(layer(x)))
    tl = torch_from_keras(layer).eval()  # dropout off: the same function
    assert max_err(y_eval, tl(torch.from_numpy(x))[0]) < 1e-5
    if BACKEND == "jax":
        with pytest.raises(NotImplementedError, match="JAX backend"):
            layer(x, training=True)
    else:
        assert max_err(layer(x, training=True), y_eval) > 1e-3


# ----------------------------------------------------------------- torch backend: the kernels
# Configurations the kernels of liquidflow._ops run on the torch backend (the others keep the loop).
KERNEL_LAYERS = [
    "ltc-fc", "ltc-ncp", "ltc-linear-nomap", "ltc-proj", "ltc-unfolds1-eps", "ltc-nomap-linear",
    "ltc-random-wiring", "cfc-default", "cfc-no_gate", "cfc-nobackbone", "cfc-tanh", "cfc-gelu", "cfc-silu",
    "cfc-relu", "cfc-proj", "cfc-dropout", "wcfc-autoncp", "wcfc-ncp-no_gate", "wcfc-fc", "wcfc-autoncp-proj",
    "ltc-autoncp-rk4", "ltc-euler", "ltc-midpoint", "ltc-heun", "ltc-euler-ncp", "ltc-midpoint-autoncp",
    "ltc-heun-ncp-proj",
]  # fmt: skip
KERNEL_VARIANTS = {
    # name: (return_sequences, go_backwards, masked, initial state)
    "sequences-mask-h0": (True, False, True, True),
    "last-mask-backwards": (False, True, True, False),
    "sequences-plain": (True, False, False, False),
}


def _torch_outputs_and_grads(kl: Any, x: np.ndarray, dt: np.ndarray, mask: Any, init: Any, path: str | None,
                             ry: list[Any] | None) -> tuple[list[Any], list[Any]]:  # fmt: skip
    """Outputs of a call on the torch backend through ``path`` and the gradients of a random
    projection of them w.r.t. the input and every trainable variable."""
    from liquidflow.keras._torch_kernels import use_path

    xt = torch.tensor(x, requires_grad=True)
    with use_path(path):
        out = kl([xt, torch.tensor(dt)], mask=None if mask is None else torch.tensor(mask), initial_state=init)
    out = list(out) if isinstance(out, (list, tuple)) else [out]
    if ry is None:
        return [o.detach() for o in out], []
    loss = sum((o * r).sum() for o, r in zip(out, ry, strict=True))
    grads = torch.autograd.grad(loss, [xt, *[v.value for v in kl.trainable_variables]], allow_unused=True)
    return [o.detach() for o in out], [g if g is not None else torch.zeros(()) for g in grads]


@pytest.mark.skipif(BACKEND != "torch", reason="the kernels of liquidflow._ops run on the torch backend")
@pytest.mark.parametrize("variant", list(KERNEL_VARIANTS))
@pytest.mark.parametrize("name", sorted(ALL_LAYERS))
def test_torch_backend_kernels_match_the_loop(name: str, variant: str) -> None:
    """On the torch backend the layers run liquidflow._ops' kernels (C on CPU, else fused torch) for the
    options they take: outputs, final state and the gradients w.r.t. the input and every Keras variable
    equal those of the keras.ops loop (float64, per-sample timespans; masks, initial state, backwards,
    last observed output). The other configurations say why they keep the loop."""
    return_sequences, go_backwards, masked, with_h0 = KERNEL_VARIANTS[variant]
    tl = make_layer(name, torch.float64, seed=31)
    kl = keras_from_torch(tl, return_state=True, return_sequences=return_sequences, go_backwards=go_backwards)
    x, dt, mask = random_batch(3, 6, torch.float64, seed=32, masked=masked)
    gen = torch.Generator().manual_seed(33)
    init = None
    if with_h0:
        h0 = 0.3 * torch.randn(3, tl.state_size, generator=gen, dtype=torch.float64)
        init = [h0, 0.1 * h0] if tl.mixed_memory else [h0]
    path = lk.explain(kl, x, dt, mask).splitlines()[0]
    if name not in KERNEL_LAYERS:
        assert path == "sequence path: loop", path  # the loop's values: the parity tests above
        return
    assert path == "sequence path: native", lk.explain(kl, x, dt, mask)
    m = None if mask is None else mask.numpy()
    shapes = [o.shape for o in _torch_outputs_and_grads(kl, x.numpy(), dt.numpy(), m, init, "loop", None)[0]]
    ry = [torch.randn(s, generator=gen, dtype=torch.float64) for s in shapes]
    ref_out, ref_grads = _torch_outputs_and_grads(kl, x.numpy(), dt.numpy(), m, init, "loop", ry)
    paths = [None] if name in ("cfc-relu", "cfc-gelu", "cfc-silu") else [None, "fused"]  # fused: tanh backbones
    for p in paths:
        out, grads = _torch_outputs_and_grads(kl, x.numpy(), dt.numpy(), m, init, p, ry)
        err = max(max_err(a, b) for a, b in zip(out, ref_out, strict=True))
        gerr = max(max_err(a, b) for a, b in zip(grads, ref_grads, strict=True))
        _record(f"torch-backend kernels ({p or 'native'}) vs loop float64 {name}", max(err, gerr))
        assert err < 1e-10 and gerr < 1e-9, (p, err, gerr)


def test_explain_names_the_path() -> None:
    layer = lk.LTC(AutoNCP(8, 2), return_sequences=True, mixed_memory=False)
    x = np.random.default_rng(0).normal(size=(2, 4, 3)).astype("float32")
    layer(x)
    if BACKEND != "torch":
        assert lk.explain(layer, x) == f"sequence path: loop (keras.ops step in the {BACKEND} backend's own loop)"
        with pytest.raises(RuntimeError, match="torch backend"):
            lk.use_path("loop")
        return
    assert lk.explain(layer, x) == "sequence path: native"
    rk4 = lk.LTC(AutoNCP(8, 2), solver="rk4")  # explicit solvers run the kernels too
    rk4(x)
    assert lk.explain(rk4, x) == "sequence path: native"
    mixed = lk.LTC(AutoNCP(8, 2), mixed_memory=True)
    mixed(x)
    assert "mixed_memory" in lk.explain(mixed, x)
    with lk.use_path("fused"):  # type: ignore[attr-defined]
        fused = npy(layer(x))
    with lk.use_path("loop"):  # type: ignore[attr-defined]
        assert max_err(layer(x), fused) < 1e-6


@pytest.mark.skipif(BACKEND != "torch", reason="the kernels of liquidflow._ops run on the torch backend")
@pytest.mark.parametrize("name", ["ltc-ncp", "cfc-default", "wcfc-autoncp"])
def test_torch_backend_kernels_float32_and_stateful(name: str) -> None:
    """float32 through the kernels equals the loop, and a stateful layer carries its state between calls."""
    from liquidflow.keras._torch_kernels import use_path

    tl = make_layer(name, torch.float32, seed=34)
    x, dt, _ = random_batch(2, 8, torch.float32, seed=35)
    kl = keras_from_torch(tl, return_sequences=True)
    with use_path("loop"):
        ref = npy(kl([x.numpy(), dt.numpy()]))
    assert max_err(kl([x.numpy(), dt.numpy()]), ref) < 1e-5
    st = keras_from_torch(tl, return_sequences=True, stateful=True, batch_size=2)
    y1 = npy(st([x[:, :5].numpy(), dt[:, :5].numpy()]))
    y2 = npy(st([x[:, 5:].numpy(), dt[:, 5:].numpy()]))
    assert max_err(np.concatenate([y1, y2], 1), ref) < 1e-5


@pytest.mark.skipif(BACKEND != "torch", reason="the kernels of liquidflow._ops run on the torch backend")
@pytest.mark.parametrize("name", ["ltc-ncp", "cfc-default", "wcfc-autoncp"])
def test_torch_backend_fit_through_the_kernels_equals_the_loop(name: str) -> None:
    """model.fit on the torch backend trains through the kernels: the same weights after an epoch as
    through the keras.ops loop (so the gradients reaching the Keras variables are the loop's), and the
    loss goes down."""
    from liquidflow.keras._torch_kernels import use_path

    tl = make_layer(name, torch.float32, seed=36)
    x, y = toy_regression(n=32, t=10, f=INPUT_SIZE)
    weights = {}
    losses = {}
    for path in ("loop", None):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((None, INPUT_SIZE)), keras_from_torch(tl, return_sequences=True),
                                  keras.layers.Dense(1)])  # fmt: skip
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05), loss="mean_squared_error")
        with use_path(path):
            before = float(model.evaluate(x, y, verbose=0))
            model.fit(x, y, epochs=3, batch_size=8, verbose=0, shuffle=False)
            losses[path] = (before, float(model.evaluate(x, y, verbose=0)))
        weights[path] = [npy(v) for v in model.trainable_variables]
    err = max(max_err(a, b) for a, b in zip(weights[None], weights["loop"], strict=True))
    _record(f"torch-backend fit kernels vs loop float32 {name}", err)
    assert err < 1e-5
    assert losses[None][1] < losses[None][0]


# ------------------------------------------------------------------------------ serialization
SAVE_CASES = {
    "ltc-int": lambda: lk.LTC(5, return_sequences=True),
    "ltc-fc": lambda: lk.LTC(FullyConnected(6, 2), return_sequences=True, solver="rk4"),
    "ltc-random": lambda: lk.LTC(Random(6, 3, 0.5), mixed_memory=True, proj_size=2),
    "ltc-ncp": lambda: lk.LTC(NCP(4, 3, 2, 2, 2, 2, 2), return_sequences=True),
    "ltc-autoncp": lambda: lk.LTC(AutoNCP(10, 3), return_sequences=True, input_mapping="linear"),
    "cfc-int": lambda: lk.CfC(5, backbone_units=8, backbone_layers=2, return_sequences=True),
    "cfc-pure-mixed": lambda: lk.CfC(5, mode="pure", mixed_memory=True, backbone_units=8),
    "cfc-fc": lambda: lk.CfC(FullyConnected(6, 2), return_sequences=True),
    "cfc-random": lambda: lk.CfC(Random(6, 3, 0.5), mode="no_gate", proj_size=2),
    "cfc-ncp": lambda: lk.CfC(NCP(4, 3, 2, 2, 2, 2, 2), return_sequences=True),
    "cfc-autoncp": lambda: lk.CfC(AutoNCP(10, 3), return_sequences=True),
}


@pytest.mark.parametrize("case", list(SAVE_CASES))
def test_save_load_round_trip(case: str, tmp_path: Path) -> None:
    inp, ts = keras.Input((None, INPUT_SIZE)), keras.Input((None,))
    layer = SAVE_CASES[case]()
    model = keras.Model([inp, ts], keras.layers.Dense(2)(layer([inp, ts])))
    x, dt, _ = random_batch(2, 5, torch.float32, seed=15)
    y = npy(model([x.numpy(), dt.numpy()]))
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)  # no custom_objects: classes are registered
    assert max_err(loaded([x.numpy(), dt.numpy()]), y) == 0.0
    new_layer = loaded.layers[2]
    assert type(new_layer) is type(layer)
    assert new_layer.get_config() == layer.get_config()
    if layer.wiring is not None:
        assert new_layer.wiring == layer.wiring


@pytest.mark.parametrize("case", list(SAVE_CASES))
def test_get_config_round_trips(case: str) -> None:
    layer = SAVE_CASES[case]()
    for obj in (layer, layer.rnn_cell):  # unbuilt, then built
        cfg = obj.get_config()
        assert type(obj).from_config(json.loads(json.dumps(cfg))).get_config() == cfg
    layer.build((None, None, INPUT_SIZE))
    for obj in (layer, layer.rnn_cell, layer.lstm, layer.fc):
        if obj is not None:
            cfg = obj.get_config()
            assert type(obj).from_config(json.loads(json.dumps(cfg))).get_config() == cfg


# ------------------------------------------------------------------------------------ training
@pytest.mark.parametrize(
    "make",
    [
        lambda: lk.CfC(16, return_sequences=True, backbone_units=16),
        lambda: lk.CfC(NCP(10, 8, 4, 4, 4, 4, 4), return_sequences=True),
        lambda: lk.LTC(FullyConnected(12, 4), return_sequences=True),
        lambda: lk.LTC(Random(12, 4, 0.5), return_sequences=True),
    ],
    ids=["cfc", "cfc-ncp", "ltc-fc", "ltc-random"],
)
def test_fit_lowers_loss(make: Any) -> None:
    """A short fit on a toy regression (y_t = tanh(x_t[0])) lowers the loss."""
    keras.utils.set_random_seed(0)
    x, y = toy_regression()
    model = keras.Sequential([keras.Input((None, 20)), make(), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="mean_squared_error")
    before = float(model.evaluate(x, y, verbose=0))
    model.fit(x, y, epochs=8, batch_size=16, verbose=0)
    after = float(model.evaluate(x, y, verbose=0))
    assert after < 0.93 * before, (before, after)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="the canonical program is a TensorFlow program")
def test_canonical_program_runs_verbatim_and_trains(capsys: pytest.CaptureFixture[str]) -> None:
    scope: dict[str, Any] = {}
    keras.utils.set_random_seed(0)
    # Keras 3 still accepts InputLayer(input_shape=...) but warns that the argument is deprecated.
    with pytest.warns(UserWarning, match="input_shape"):
        exec(compile(CANONICAL_PROGRAM, "canonical_program", "exec"), scope)
    assert "LTC" in capsys.readouterr().out  # model.summary() printed the layer
    model = scope["model"]
    assert model.layers[0].output.shape == (None, None, 10)  # 10 motor neurons
    assert scope["wiring"].input_dim == 20  # the layer built the user's wiring in place, as ncps does
    assert model.layers[0].wiring.input_dim == 20
    x, y = toy_regression()
    before = float(model.evaluate(x, y, verbose=0))
    model.fit(x, y, epochs=8, batch_size=16, verbose=0)
    after = float(model.evaluate(x, y, verbose=0))
    assert after < 0.93 * before, (before, after)


def test_liquidflow_tf_refuses_other_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    if BACKEND == "tensorflow":
        import liquidflow.tf as ltf

        assert ltf.LTC is lk.LTC and ltf.CfC is lk.CfC
        return
    import types

    monkeypatch.setitem(sys.modules, "tensorflow", types.ModuleType("tensorflow"))
    monkeypatch.delitem(sys.modules, "liquidflow.tf", raising=False)
    with warnings.catch_warnings(), pytest.raises(ImportError, match="needs the TensorFlow backend"):
        import liquidflow.tf  # noqa: F401


def test_example_runs(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import runpy

    monkeypatch.setenv("EPOCHS", "1")
    runpy.run_path(str(Path(__file__).resolve().parents[2] / "examples" / "keras_quickstart.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "reloaded model gives the same predictions: True" in out
    diff = float(out.split("keras vs torch, largest difference: ")[1].split()[0])
    assert diff < 1e-5
