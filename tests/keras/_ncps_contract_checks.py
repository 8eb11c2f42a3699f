"""ncps.keras drop-in checks of liquidflow.keras on ONE Keras backend (issue 15, Keras part).

Run by tests/keras/test_ncps_contract.py once per backend in a subprocess
(``KERAS_BACKEND=<backend> python -m pytest tests/keras/_ncps_contract_checks.py``), like
_backend_checks.py. What is checked comes from the Keras RNN cell / layer contract (SimpleRNNCell,
LSTMCell, keras.layers.RNN, Bidirectional) and from ncps 1.0.1's documented Keras behaviour.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import keras
import liquidflow.keras as lk
from keras import ops
from liquidflow.wirings import NCP, AutoNCP, FullyConnected

BACKEND = keras.backend.backend()
B, T, F = 3, 6, 5


def npy(x: Any) -> np.ndarray:
    return np.asarray(ops.convert_to_numpy(x), dtype=np.float64)


def data(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(B, T, F)).astype("float32")


def as_json(config: dict[str, Any]) -> Any:
    """A config as its JSON form (tuples become lists, as in a saved file)."""
    return json.loads(json.dumps(config))


def softplus(x: Any) -> np.ndarray:
    return np.log1p(np.exp(npy(x)))


# ------------------------------------------------------------------------------- 1. cell contract
CELLS = {
    "ltc": lambda: lk.LTCCell(NCP(10, 10, 8, 6, 6, 4, 6)),
    "ltc-int": lambda: lk.LTCCell(7),
    "cfc": lambda: lk.CfCCell(8, backbone_units=6),
    "wired-cfc": lambda: lk.WiredCfCCell(AutoNCP(10, 3, seed=2)),
    "mixed-memory-rnn": lambda: lk.MixedMemoryRNN(lk.LTCCell(AutoNCP(10, 3, seed=1))),
    "mixed-memory-lstm": lambda: lk.MixedMemoryLSTMCell(6),
}


@pytest.mark.parametrize("kind", list(CELLS))
def test_cell_returns_output_and_a_list_of_states(kind: str) -> None:
    """As keras.layers.LSTMCell: call(inputs, states, training=None) -> (output, [new_state, ...])."""
    cell = CELLS[kind]()
    assert list(inspect.signature(cell.call).parameters)[:3] == ["inputs", "states", "training"]
    sizes = cell.state_size if isinstance(cell.state_size, list) else [cell.state_size]
    states = cell.get_initial_state(batch_size=B)
    assert isinstance(states, list) and [tuple(s.shape) for s in states] == [(B, n) for n in sizes]
    x = data()[:, 0]
    out, new = cell(x, states)
    assert isinstance(new, list) and [tuple(s.shape) for s in new] == [(B, n) for n in sizes]
    assert tuple(out.shape) == (B, cell.output_size)
    if len(sizes) == 1:  # the example: a bare tensor state still gives a list back
        out2, hx = cell(x, ops.zeros((B, sizes[0])))
        assert isinstance(hx, list) and tuple(hx[0].shape) == (B, sizes[0])
        assert np.array_equal(npy(out2), npy(out)) and np.array_equal(npy(hx[0]), npy(new[0]))
    # one step of keras.layers.RNN over the cell is the cell's call
    rnn = keras.layers.RNN(cell, return_state=True)
    y, *last = rnn(x[:, None])
    assert np.allclose(npy(y), npy(out), atol=1e-6)
    assert all(np.allclose(npy(a), npy(b), atol=1e-6) for a, b in zip(last, new, strict=True))


def test_cell_refuses_a_list_of_the_wrong_length() -> None:
    cell = lk.CfCCell(4, backbone_layers=0)
    with pytest.raises(ValueError, match="one state tensor; got a list of 2"):
        cell(data()[:, 0], [ops.zeros((B, 4)), ops.zeros((B, 4))])


# ------------------------------------------------------------------------------------ 2. config
LAYERS = {
    "ltc": lambda: lk.LTC(AutoNCP(10, 3, seed=1), return_sequences=True),
    "ltc-mixed": lambda: lk.LTC(FullyConnected(6, 2), mixed_memory=True),
    "cfc": lambda: lk.CfC(6, backbone_units=8, return_sequences=True),
    "cfc-wired": lambda: lk.CfC(NCP(4, 3, 2, 2, 2, 2, 2), mode="no_gate"),
    "cfc-options": lambda: lk.CfC(
        5, dropout=0.2, recurrent_dropout=0.3, kernel_regularizer="l2", recurrent_regularizer=keras.regularizers.L1(0.1)
    ),
    "ltc-options": lambda: lk.LTC(6, dropout=0.1, kernel_regularizer="l1", recurrent_regularizer="l2"),
}


@pytest.mark.parametrize("kind", list(LAYERS))
def test_config_nests_the_cell_and_round_trips(kind: str) -> None:
    layer = LAYERS[kind]()
    layer(data())
    config = layer.get_config()
    cell = config["cell"]  # as keras.layers.RNN and ncps' layers
    assert cell["class_name"] == type(layer.rnn_cell).__name__
    assert cell["config"] == layer.rnn_cell.get_config()
    if layer.wiring is not None:
        assert layer.cell.wiring is layer.wiring  # ncps users read layer.cell.wiring
        assert cell["config"]["wiring"] == layer.wiring.get_config()
    again = type(layer).from_config(json.loads(json.dumps(config)))
    again(data())
    assert again.get_config() == config
    old = {k: v for k, v in config.items() if k != "cell"}  # a config saved before 'cell' existed
    from_old = type(layer).from_config(old)
    from_old(data())
    assert from_old.get_config() == config


@pytest.mark.parametrize("kind", ["ltc", "cfc-wired", "ltc-mixed"])
def test_bidirectional_config_and_equivalence(kind: str, tmp_path: Path) -> None:
    bi = keras.layers.Bidirectional(LAYERS[kind]())
    x = data()
    y = npy(bi(x))
    config = bi.get_config()
    assert config["layer"]["config"]["cell"]["class_name"] == type(bi.forward_layer.rnn_cell).__name__
    assert config["backward_layer"]["config"]["go_backwards"] is True
    clone = keras.layers.Bidirectional.from_config(json.loads(json.dumps(config)))
    clone(x)
    assert as_json(clone.get_config()) == as_json(config)
    clone.set_weights(bi.get_weights())
    assert np.array_equal(npy(clone(x)), y)
    inp = keras.Input((None, F))
    model = keras.Model(inp, bi(inp))
    model.save(tmp_path / "bi.keras")
    loaded = keras.models.load_model(tmp_path / "bi.keras")
    assert np.array_equal(npy(loaded(x)), y)
    assert as_json(loaded.layers[1].get_config()) == as_json(config)


def test_mixed_memory_rnn_in_a_keras_rnn_saves_and_loads(tmp_path: Path) -> None:
    inp = keras.Input((None, F))
    rnn = keras.layers.RNN(lk.MixedMemoryRNN(lk.CfCCell(6, backbone_layers=0)), return_sequences=True)
    model = keras.Model(inp, rnn(inp))
    x = data()
    y = npy(model(x))
    model.save(tmp_path / "mm.keras")
    loaded = keras.models.load_model(tmp_path / "mm.keras")
    assert np.array_equal(npy(loaded(x)), y)
    assert loaded.layers[1].cell.get_config() == rnn.cell.get_config()


@pytest.mark.parametrize("kind", list(LAYERS))
def test_model_with_each_layer_saves_and_loads(kind: str, tmp_path: Path) -> None:
    inp = keras.Input((None, F))
    layer = LAYERS[kind]()
    model = keras.Model(inp, layer(inp))
    x = data(1)
    y = npy(model(x))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert np.array_equal(npy(loaded(x)), y)
    assert loaded.layers[1].get_config() == layer.get_config()
    model.save_weights(tmp_path / "m.weights.h5")
    fresh = keras.Model(inp2 := keras.Input((None, F)), type(layer).from_config(layer.get_config())(inp2))
    fresh.load_weights(tmp_path / "m.weights.h5")
    assert np.array_equal(npy(fresh(x)), y)


# ------------------------------------------------------------------------------------ 3. options
def test_regularizer_losses_equal_the_formula() -> None:
    l2, l1 = 0.01, 0.1
    layer = lk.CfC(5, backbone_units=7, backbone_layers=2, kernel_regularizer=keras.regularizers.L2(l2),
                   recurrent_regularizer=keras.regularizers.L1(l1))  # fmt: skip
    layer(data())
    cell = layer.rnn_cell
    k0 = npy(cell.backbone[0].kernel)
    heads = np.concatenate([npy(getattr(cell, n).kernel) for n in ("f1", "f2", "time_a", "time_b")], axis=1)
    want_in = l2 * sum(np.sum(k**2) for k in (k0[:F], npy(cell.backbone[1].kernel), heads))
    want_rec = l1 * np.sum(np.abs(k0[F:]))
    got = [float(npy(v)) for v in layer.losses]
    assert len(got) == 4
    assert np.isclose(sum(got[:3]), want_in, rtol=1e-5) and np.isclose(got[3], want_rec, rtol=1e-5)

    ltc = lk.LTC(AutoNCP(8, 2, seed=3), kernel_regularizer=keras.regularizers.L2(l2),
                 recurrent_regularizer=keras.regularizers.L2(l1))  # fmt: skip
    ltc(data())
    c = ltc.rnn_cell
    sensory = softplus(c.sensory_w_raw) * npy(c.sensory_sparsity_mask)
    recurrent = softplus(c.w_raw) * npy(c.sparsity_mask)
    got = [float(npy(v)) for v in ltc.losses]
    assert np.allclose(got, [l2 * np.sum(sensory**2), l1 * np.sum(recurrent**2)], rtol=1e-5)


def test_regularizer_losses_of_wired_cfc_and_mixed_memory() -> None:
    layer = lk.CfC(AutoNCP(8, 2, seed=3), mixed_memory=True, recurrent_regularizer=keras.regularizers.L2(1.0))
    layer(data())
    want = sum(np.sum(npy(k) ** 2) for k in layer.rnn_cell.regularized_kernels()[1])
    want += np.sum(npy(layer.lstm.recurrent_map.kernel) ** 2)
    assert np.isclose(sum(float(npy(v)) for v in layer.losses), want, rtol=1e-5)
    # the wired layers' recurrent rows are masked as they are used
    first = layer.rnn_cell.layers[0]
    n_in = first.input_size
    assert np.array_equal(npy(layer.rnn_cell.regularized_kernels()[1][0]), npy(first._heads()[0])[n_in:])


def _copy_cell_weights(source: Any, target: Any) -> None:
    """The liquid cell's and the LSTM's weights (the layers differ only in their dropout seed state)."""
    for v_target, v_source in zip(target.cell.weights, source.cell.weights, strict=True):
        v_target.assign(v_source)


@pytest.mark.parametrize(
    "make",
    [
        lambda **kw: lk.CfC(6, backbone_units=8, return_sequences=True, **kw),
        lambda **kw: lk.CfC(AutoNCP(8, 3, seed=1), return_sequences=True, **kw),
        lambda **kw: lk.CfC(6, mixed_memory=True, return_sequences=True, **kw),
    ],
    ids=["cfc", "cfc-wired", "cfc-mixed"],
)
def test_dropout_only_in_training(make: Any) -> None:
    plain = make()
    dropped = make(dropout=0.4, recurrent_dropout=0.4)
    x = data()
    plain(x)
    dropped(x)
    _copy_cell_weights(plain, dropped)
    y = npy(plain(x))
    assert np.array_equal(npy(dropped(x)), y)  # inference: no dropout
    assert np.array_equal(npy(dropped(x, training=False)), y)
    assert not np.allclose(npy(dropped(x, training=True)), y)
    input_only = make(dropout=0.4)
    input_only(x)
    _copy_cell_weights(plain, input_only)
    assert np.array_equal(npy(input_only(x)), y)
    assert not np.allclose(npy(input_only(x, training=True)), y)


def test_input_dropout_keeps_one_mask_per_sequence() -> None:
    """Keras' RNN layers drop the same input features at every step of a sequence."""
    layer = lk.LTC(4, dropout=0.5)
    x = np.ones((64, T, F), "float32")
    layer(x)
    seen = npy(layer.input_dropout(x, training=True))
    assert np.array_equal(seen, np.repeat(seen[:, :1], T, axis=1))
    assert 0 < np.mean(seen == 0) < 1


def test_training_with_dropout_runs_and_lowers_the_loss() -> None:
    x = data(3)
    y = np.sin(np.cumsum(x[..., :1], axis=1)).astype("float32")
    inp = keras.Input((None, F))
    layer = lk.CfC(8, backbone_units=8, return_sequences=True, dropout=0.1, recurrent_dropout=0.1,
                   kernel_regularizer="l2")  # fmt: skip
    model = keras.Model(inp, keras.layers.Dense(1)(layer(inp)))
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="mse")
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=15, verbose=0)
    assert model.evaluate(x, y, verbose=0) < before


def test_unsupported_options_say_what_to_use() -> None:
    with pytest.raises(ValueError, match=r"LTC does not support recurrent_dropout.*use dropout="):
        lk.LTC(4, recurrent_dropout=0.2)
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\); got 1.5"):
        lk.CfC(4, dropout=1.5)
    with pytest.raises(ValueError, match="takes no initialization_ranges"):
        lk.LTC(4, initialization_ranges={"gleak": (0.1, 0.2)})
    with pytest.raises(ValueError, match="takes no sparsity_mask"):
        lk.CfC(4, sparsity_mask=np.ones((8, 4)))
    with pytest.raises(ValueError, match="only fully_recurrent=True"):
        lk.CfC(AutoNCP(8, 2), fully_recurrent=False)
    same = lk.CfC(AutoNCP(8, 2), fully_recurrent=True, name="c").get_config()
    assert same == lk.CfC(AutoNCP(8, 2), name="c").get_config()


# ------------------------------------------------------------------- ncps.keras: values and weights
ncps_keras = pytest.importorskip("ncps.keras")
ncps_wirings = pytest.importorskip("ncps.wirings")


def _ncps_model(layer: Any) -> Any:
    inp = keras.Input((None, F))
    return keras.Model(inp, layer(inp))


NCPS_PAIRS = {
    "ltc-autoncp": (lambda: ncps_keras.LTC(ncps_wirings.AutoNCP(10, 3, seed=1), return_sequences=True),
                    lambda: lk.LTC(AutoNCP(10, 3, seed=1), return_sequences=True)),
    "ltc-ncp": (lambda: ncps_keras.LTC(ncps_wirings.NCP(4, 3, 2, 2, 2, 2, 2, seed=5)),
                lambda: lk.LTC(NCP(4, 3, 2, 2, 2, 2, 2, seed=5))),
    "ltc-linear": (lambda: ncps_keras.LTC(6, input_mapping="linear", output_mapping=None),
                   lambda: lk.LTC(6, input_mapping="linear", output_mapping=None)),
    "cfc-pure": (lambda: ncps_keras.CfC(6, mode="pure", backbone_units=8, backbone_layers=2),
                 lambda: lk.CfC(6, mode="pure", backbone_units=8, backbone_layers=2)),
}  # fmt: skip


@pytest.mark.parametrize("kind", list(NCPS_PAIRS))
@pytest.mark.parametrize("fmt", ["weights.h5", "keras"])
def test_ncps_keras_weights_load_and_give_the_same_outputs(kind: str, fmt: str, tmp_path: Path) -> None:
    make_ncps, make_ours = NCPS_PAIRS[kind]
    keras.utils.clear_session()  # both models get the default layer names, as in two programs
    theirs = _ncps_model(make_ncps())
    x = data(4)
    y = npy(theirs(x))
    path = tmp_path / f"ncps.{fmt}"
    theirs.save_weights(path) if fmt == "weights.h5" else theirs.save(path)
    keras.utils.clear_session()
    ours = _ncps_model(make_ours())
    ours.load_weights(path)
    assert np.max(np.abs(npy(ours(x)) - y)) < 1e-5


@pytest.mark.filterwarnings("ignore:Skipping nested container")  # Keras, on its way to our error
def test_ncps_keras_weights_that_mean_another_network_are_refused(tmp_path: Path) -> None:
    for make_ncps, make_ours, match in [
        (lambda: ncps_keras.CfC(6), lambda: lk.CfC(6), "without the tanh"),
        (lambda: ncps_keras.LTC(6, mixed_memory=True), lambda: lk.LTC(6, mixed_memory=True), "MixedMemoryRNN"),
    ]:
        keras.utils.clear_session()
        _ncps_model(make_ncps()).save_weights(tmp_path / "w.weights.h5")
        keras.utils.clear_session()
        with pytest.raises(ValueError, match=match):
            _ncps_model(make_ours()).load_weights(tmp_path / "w.weights.h5")


@pytest.mark.filterwarnings("ignore:Skipping nested container")  # Keras, on its way to our error
def test_ncps_keras_weights_of_another_wiring_are_refused(tmp_path: Path) -> None:
    keras.utils.clear_session()
    _ncps_model(ncps_keras.LTC(ncps_wirings.AutoNCP(10, 3, seed=1))).save_weights(tmp_path / "w.weights.h5")
    keras.utils.clear_session()
    with pytest.raises(ValueError, match="differ from this layer's wiring"):
        _ncps_model(lk.LTC(AutoNCP(10, 3, seed=2))).load_weights(tmp_path / "w.weights.h5")


def test_mixed_memory_rnn_equals_ncps_with_the_same_weights() -> None:
    if BACKEND == "jax":
        pytest.skip("ncps.keras's MixedMemoryRNN returns nested states [c, [h]], which jax.lax.scan refuses")
    theirs = keras.layers.RNN(ncps_keras.MixedMemoryRNN(ncps_keras.LTCCell(ncps_wirings.FullyConnected(6, 2))))
    ours = keras.layers.RNN(lk.MixedMemoryRNN(lk.LTCCell(FullyConnected(6, 2))))
    x = data(5)
    y_theirs = npy(theirs(x))
    ours(x)
    mm_t, mm_o = theirs.cell, ours.cell
    for name in ("input_kernel", "recurrent_kernel", "bias"):
        getattr(mm_o, name).assign(getattr(mm_t, name))
    c_t, c_o = mm_t.rnn_cell._params, mm_o.rnn_cell
    for name, value in c_t.items():
        if name in ("gleak", "cm", "w", "sensory_w"):
            raw = npy(value)
            getattr(c_o, f"{name}_raw").assign((raw + np.log(-np.expm1(-raw))).astype("float32"))
        elif "sparsity_mask" not in name:
            getattr(c_o, name).assign(value)
    assert np.max(np.abs(npy(ours(x)) - y_theirs)) < 1e-5


def test_ncps_keras_cells_return_lists_like_ours() -> None:
    """The contract this file holds liquidflow to is ncps.keras's own: (output, [state])."""
    x = data()[:, 0]
    _, theirs = ncps_keras.LTCCell(ncps_wirings.FullyConnected(6, 2))(x, [ops.zeros((B, 6))])
    _, ours = lk.LTCCell(FullyConnected(6, 2))(x, [ops.zeros((B, 6))])
    assert isinstance(theirs, list) and isinstance(ours, list)
    assert tuple(theirs[0].shape) == tuple(ours[0].shape) == (B, 6)


def test_explain_names_recurrent_dropout_on_the_torch_backend() -> None:
    if BACKEND != "torch":
        pytest.skip("the kernels run on the torch backend only")
    layer = lk.CfC(AutoNCP(8, 3, seed=1), recurrent_dropout=0.2)
    x = data()
    layer(x)
    assert "recurrent_dropout" in lk.explain(layer, x, training=True)
    assert "recurrent_dropout" not in lk.explain(layer, x, training=False)
