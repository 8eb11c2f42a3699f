"""Keras 3 cells (one step): LTC, CfC, wired CfC and the mixed-memory LSTM, written with keras.ops.

The equations are those of docs/math.md, and the parameters carry the names of the torch cells
(``gleak_raw``, ``w_raw``, ``sigma`` ..., heads ``f1``, ``f2``, ``time_a``, ``time_b``), so that
``liquidflow.compat.keras_torch`` can copy weights one to one. Layouts differ only where Keras
conventions do: a Dense ``kernel`` is the transpose of a torch ``Linear.weight``, and the CfC
``sparsity_mask`` is stored in kernel layout (inputs+hidden, hidden).

A cell is called as ``cell(inputs, states)`` where ``inputs`` is ``x`` (B, I) — one step of elapsed
time 1 — or a pair ``(x, dt)`` with ``dt`` a float, (B,) or (B, 1). It returns ``(output, new_states)``
like every Keras RNN cell, so ``keras.layers.RNN(cell)`` works with regular time steps; the sequence
layers :class:`~liquidflow.keras.LTC` and :class:`~liquidflow.keras.CfC` add irregular time and masks.
The number of inputs is inferred when the cell is built.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import keras
from keras import ops

from .._frontend import WiredCfCSizes
from .._spec import (
    CFC_MODES,
    HEAD_ACTIVATIONS,
    check_choice,
    ncp_layer_masks,
)
from ..wirings import Wiring
from ._common import (
    ACTIVATIONS,
    _Cell,
    _check_int,
    _constant,
    _Dense,
    _first_state,
    _input_dim,
    _mm,
    _register,
    _torch_bias_init,
    as_wiring,
    serialize_cell,
    split_step_inputs,
)
from ._ltc_cell import LTCCell as LTCCell


# -------------------------------------------------------------------------------------------- CfC
@_register
class CfCCell(_Cell):
    """Closed-form continuous-time cell (docs/math.md section 3), one step of elapsed time dt.

    z = backbone([x, h]); f1 = tanh(W1 z + b1); f2 = tanh(W2 z + b2);
    g = sigmoid(-(Wa z + ba) dt + (Wb z + bb)); h' = f1 g + f2 (1 - g)   (mode "default");
    h' = f1 g + f2 ("no_gate"); h' = A - A exp(-dt (|w_tau| + |u1|)) u1, u1 = W1 z + b1 ("pure").

    Args:
        units: hidden size. The input size is inferred at build time.
        mode: ``"default"``, ``"no_gate"`` or ``"pure"``.
        backbone_activation: ``"lecun_tanh"`` (default), ``"tanh"``, ``"relu"``, ``"gelu"``, ``"silu"``.
        backbone_units / backbone_layers / backbone_dropout: the backbone MLP (0 layers: none);
            dropout follows every backbone layer in training mode.
        sparsity_mask: optional (inputs + units, units) array multiplied into W1 and W2.
        head_activation: ``"tanh"`` (default, ncps) or ``"lecun_tanh"`` (the CfC paper's cell) for f1, f2.

    Weights: ``backbone[i]``, ``f1``, ``f2``, ``time_a``, ``time_b`` are Dense layers (their kernels
    are the transposes of the torch ``Linear`` weights); ``w_tau`` and ``A`` in pure mode.
    """

    def __init__(
        self,
        units: int,
        mode: str = "default",
        backbone_activation: str = "lecun_tanh",
        backbone_units: int = 128,
        backbone_layers: int = 1,
        backbone_dropout: float = 0.0,
        sparsity_mask: np.ndarray | list[list[float]] | None = None,
        head_activation: str = "tanh",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.units = _check_int("units", units, 1)
        check_choice("mode", mode, CFC_MODES)
        check_choice("head_activation", head_activation, list(HEAD_ACTIVATIONS))
        self.head_activation = head_activation
        self._head_act = ACTIVATIONS[head_activation]
        if backbone_activation not in ACTIVATIONS:
            raise ValueError(f"backbone_activation must be one of {sorted(ACTIVATIONS)}; got {backbone_activation!r}")
        self.backbone_layers = _check_int("backbone_layers", backbone_layers, 0)
        if self.backbone_layers > 0:
            backbone_units = _check_int("backbone_units", backbone_units, 1)
        if not 0.0 <= float(backbone_dropout) < 1.0:
            raise ValueError(f"backbone_dropout must be in [0, 1); got {backbone_dropout}")
        self.mode = mode
        self.backbone_activation = backbone_activation
        self.backbone_units = backbone_units
        self.backbone_dropout = float(backbone_dropout)
        self._act = ACTIVATIONS[backbone_activation]
        self._mask_init = None if sparsity_mask is None else np.abs(np.asarray(sparsity_mask, dtype=np.float32))
        self.backbone = [
            _Dense(backbone_units, kernel_initializer="glorot_uniform", name=f"backbone_{i}", dtype=self.dtype_policy)
            for i in range(self.backbone_layers)
        ]
        self.dropout = (
            keras.layers.Dropout(self.backbone_dropout, dtype=self.dtype_policy) if self.backbone_dropout > 0 else None
        )
        heads = ("f1",) if mode == "pure" else ("f1", "f2", "time_a", "time_b")
        self._head_names = heads
        for name in heads:
            setattr(
                self,
                name,
                _Dense(self.units, kernel_initializer="glorot_uniform", name=name, dtype=self.dtype_policy),
            )
        if mode == "pure":
            self.f2 = self.time_a = self.time_b = None
        self.sparsity_mask = None

    @property
    def state_size(self) -> int:
        return self.units

    @property
    def output_size(self) -> int:
        return self.units

    def build(self, input_shape: Any) -> None:
        n_in = _input_dim(input_shape, "CfCCell")
        self.input_size = n_in
        width = n_in + self.units
        for layer in self.backbone:
            layer.bias_initializer = _torch_bias_init(width)
            layer.build((None, width))
            width = int(layer.units)
        for name in self._head_names:
            head = getattr(self, name)
            head.bias_initializer = _torch_bias_init(width)
            head.build((None, width))
        if self.mode == "pure":
            self.w_tau = self.add_weight(name="w_tau", shape=(self.units,), initializer="zeros")
            self.A = self.add_weight(name="A", shape=(self.units,), initializer="ones")
        if self._mask_init is not None:
            if self._mask_init.shape != (width, self.units):
                raise ValueError(
                    f"sparsity_mask must have shape {(width, self.units)} (inputs + units, units); "
                    f"got {self._mask_init.shape}"
                )
            self.sparsity_mask = self.add_weight(
                name="sparsity_mask", shape=(width, self.units), initializer=_constant(self._mask_init), trainable=False
            )

    def _kernel(self, head: keras.layers.Dense, masked: bool) -> Any:
        if masked and self.sparsity_mask is not None:
            return head.kernel * self.sparsity_mask
        return head.kernel

    # The input part of the first linear map (backbone layer 0, or the heads without a backbone)
    # does not depend on the state: the sequence layer computes it for all steps at once with
    # ``precompute`` (one (B·T) x I product); ``step_pre`` adds the state part at each step.
    @property
    def pre_size(self) -> int:
        """Width of ``precompute``'s last axis: the outputs of the first linear map."""
        if self.backbone:
            return int(self.backbone_units)
        return self.units * len(self._head_names)

    def _heads(self) -> tuple[Any, Any]:
        """The heads as one linear map [f1 | f2 | time_a | time_b] ([f1] in pure mode): kernel, bias."""
        heads = [getattr(self, name) for name in self._head_names]
        kernel = [self._kernel(head, name in ("f1", "f2")) for head, name in zip(heads, self._head_names, strict=True)]
        if len(heads) == 1:
            return kernel[0], heads[0].bias
        return ops.concatenate(kernel, axis=1), ops.concatenate([head.bias for head in heads], axis=0)

    def _first_map(self) -> tuple[Any, Any]:
        if self.backbone:
            return self.backbone[0].kernel, self.backbone[0].bias
        return self._heads()

    def precompute(self, x: Any, dt: Any = None) -> Any:
        """x (B, T, I) or (B, I) -> the input part of the first linear map, bias included: (..., pre_size)."""
        kernel, bias = self._first_map()
        return _mm(x, kernel[: self.input_size]) + bias

    def step_weights(self) -> dict[str, Any]:
        """The weights the recurrence uses (masked, heads concatenated), computed once per sequence."""
        kernel, bias = self._first_map()
        heads = self._heads() if self.backbone else (kernel, bias)
        return {
            "in": (kernel[: self.input_size], bias),
            "h": kernel[self.input_size :],
            "backbone": [(layer.kernel, layer.bias) for layer in self.backbone[1:]],
            "heads": heads,
        }

    def step_pre(
        self, pre: Any, h: Any, dt: Any, weights: dict[str, Any], training: bool | None = None
    ) -> tuple[Any, Any]:
        """One step from pre (B, pre_size), state h (B, units), dt a float or (B, 1) -> (output, new h)."""
        u = pre + _mm(h, weights["h"])
        if self.backbone:
            z = self._drop(self._act(u), training)
            for k, b in weights["backbone"]:
                z = self._drop(self._act(_mm(z, k) + b), training)
            k, b = weights["heads"]
            u = _mm(z, k) + b
        dt = 1.0 if dt is None else dt
        if self.mode == "pure":
            new = self.A - self.A * ops.exp(-dt * (ops.abs(self.w_tau) + ops.abs(u))) * u
        else:
            u1, u2, ta, tb = ops.split(u, 4, axis=-1)  # split, not slices (cheaper gradient on TensorFlow)
            f1 = self._head_act(u1)
            f2 = self._head_act(u2)
            g = ops.sigmoid(tb - ta * dt)
            new = f1 * g + f2 if self.mode == "no_gate" else f2 + g * (f1 - f2)  # = f1 g + f2 (1 - g)
        return new, new

    def regularized_kernels(self) -> tuple[list[Any], list[Any]]:
        """(input kernels, recurrent kernels) for the layers' kernel_regularizer / recurrent_regularizer.

        Recurrent: the rows of the first linear map that multiply the state; input: its rows that
        multiply x, and every later kernel (backbone layers 1.., heads). Masked as they are used.
        """
        kernel, _ = self._first_map()
        inputs = [kernel[: self.input_size]]
        if self.backbone:
            inputs += [layer.kernel for layer in self.backbone[1:]] + [self._heads()[0]]
        return inputs, [kernel[self.input_size :]]

    def _drop(self, z: Any, training: bool | None) -> Any:
        """Backbone dropout after every backbone layer, in training mode."""
        if self.dropout is None or not training:
            return z
        if keras.backend.backend() == "jax":
            # a fresh mask per step needs the random state inside the scan, which JAX forbids
            raise NotImplementedError(
                "backbone_dropout > 0 cannot train on the JAX backend of Keras (per-step dropout "
                "inside the RNN loop); use backbone_dropout=0 or the TensorFlow / PyTorch backend"
            )
        return self.dropout(z, training=training)

    def call(self, inputs: Any, states: Any, training: bool | None = None) -> tuple[Any, Any]:
        x, dt = split_step_inputs(inputs)
        h = _first_state(states)
        new, _ = self.step_pre(self.precompute(x), h, dt, self.step_weights(), training=training)
        return new, [new]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            units=self.units,
            mode=self.mode,
            backbone_activation=self.backbone_activation,
            backbone_units=self.backbone_units,
            backbone_layers=self.backbone_layers,
            backbone_dropout=self.backbone_dropout,
            sparsity_mask=None if self._mask_init is None else self._mask_init.tolist(),
            head_activation=self.head_activation,
        )
        return config


@_register
class WiredCfCCell(WiredCfCSizes, _Cell):
    """CfC laid out by a wiring: one CfC sub-cell (no backbone) per wiring layer, in layer order.

    For an NCP: inter -> command -> motor. Layer l sees the inputs (l = 0) or the new state of
    layer l-1 through the wiring's (sensory) adjacency, and its own neurons densely (docs/math.md,
    "Wired CfC"). The state is the concatenation of the layers' states; the output is the last
    layer's state. The sub-cells (``layers``) are created when the input size is known (build).
    """

    def __init__(self, wiring: Wiring | dict[str, Any], mode: str = "default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        wiring = as_wiring(wiring, "wiring")
        if mode not in CFC_MODES:
            raise ValueError(f"mode must be one of {CFC_MODES}; got {mode!r}")
        self.wiring = wiring
        self.mode = mode
        self.layer_sizes = self.wiring_layer_sizes(wiring)
        self.layers: list[CfCCell] = []

    # state_size, output_size, num_layers: from WiredCfCSizes

    def build(self, input_shape: Any) -> None:
        n_in = _input_dim(input_shape, "WiredCfCCell")
        # the user's wiring, built in place (as ncps), or a copy when it is built for another size
        wiring = self.wiring = self.wiring.built_for(n_in)
        assert wiring.sensory_adjacency_matrix is not None
        self.input_size = n_in
        layers = []
        in_features = n_in
        for layer_id, mask in enumerate(ncp_layer_masks(wiring)):
            cell = CfCCell(
                mask.shape[1],
                self.mode,
                "lecun_tanh",
                0,
                0,
                0.0,
                sparsity_mask=mask,
                name=f"layer_{layer_id}",
                dtype=self.dtype_policy,
            )
            cell.build((None, in_features))
            layers.append(cell)
            in_features = mask.shape[1]
        self.layers = layers

    @property
    def pre_size(self) -> int:
        """Width of ``precompute``'s last axis: layer 0's heads (4 x its neurons; 1 x in pure mode)."""
        return self.layers[0].pre_size

    def precompute(self, x: Any, dt: Any = None) -> Any:
        """x (B, T, I) -> the input part of layer 0's heads for all steps, (B, T, pre_size)."""
        return self.layers[0].precompute(x)

    def step_weights(self) -> list[dict[str, Any]]:
        return [cell.step_weights() for cell in self.layers]

    def regularized_kernels(self) -> tuple[list[Any], list[Any]]:
        """(input kernels, recurrent kernels): each wiring layer's rows that multiply its input (x or
        the previous layer's state) and those that multiply its own state, masked by the wiring."""
        inputs: list[Any] = []
        recurrent: list[Any] = []
        for cell in self.layers:
            i, r = cell.regularized_kernels()
            inputs += i
            recurrent += r
        return inputs, recurrent

    def step_pre(
        self, pre: Any, h: Any, dt: Any, weights: list[dict[str, Any]], training: bool | None = None
    ) -> tuple[Any, Any]:
        """One step of all layers: layer 0 from pre, layer l from layer l-1's new state."""
        new = []
        start = 0
        out = None
        for i, (cell, size, w) in enumerate(zip(self.layers, self.layer_sizes, weights, strict=True)):
            if i > 0:
                k, b = w["in"]
                pre = _mm(out, k) + b
            out, _ = cell.step_pre(pre, h[:, start : start + size], dt, w)
            new.append(out)
            start += size
        return out, ops.concatenate(new, axis=-1)

    def call(self, inputs: Any, states: Any, training: bool | None = None) -> tuple[Any, Any]:
        x, dt = split_step_inputs(inputs)
        h = _first_state(states)
        out, state = self.step_pre(self.precompute(x), h, dt, self.step_weights())
        return out, [state]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(wiring=self.wiring.get_config(), mode=self.mode)
        return config


# ----------------------------------------------------------------------------------- mixed memory
@_register
class MixedMemoryLSTMCell(keras.layers.Layer):
    """The LSTM that runs before the liquid cell when ``mixed_memory=True`` (docs/math.md section 4).

    z = x W_x + b + h W_h; [i, ig, fg, og] = split(z); c' = c sigmoid(fg + 1) + tanh(i) sigmoid(ig);
    h' = tanh(c') sigmoid(og). ``input_map`` (with bias) and ``recurrent_map`` (no bias) are Dense.
    """

    def __init__(self, units: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = _check_int("units", units, 1)
        self.input_map = _Dense(
            4 * self.units,
            kernel_initializer="glorot_uniform",
            bias_initializer=keras.initializers.RandomUniform(-0.1, 0.1),
            name="input_map",
            dtype=self.dtype_policy,
        )
        self.recurrent_map = _Dense(
            4 * self.units,
            use_bias=False,
            kernel_initializer="orthogonal",
            name="recurrent_map",
            dtype=self.dtype_policy,
        )

    @property
    def state_size(self) -> list[int]:
        return [self.units, self.units]

    @property
    def output_size(self) -> int:
        return self.units

    def get_initial_state(self, batch_size: Any = None) -> list[Any]:
        return [ops.zeros((batch_size, self.units), dtype=self.compute_dtype) for _ in range(2)]

    def build(self, input_shape: Any) -> None:
        self.input_map.build((None, _input_dim(input_shape, "MixedMemoryLSTMCell")))
        self.recurrent_map.build((None, self.units))

    def regularized_kernels(self) -> tuple[list[Any], list[Any]]:
        return [self.input_map.kernel], [self.recurrent_map.kernel]

    def precompute(self, x: Any) -> Any:
        """x (B, T, I) or (B, I) -> its part of z for all steps, bias included: (..., 4 units)."""
        return _mm(x, self.input_map.kernel) + self.input_map.bias

    def step_pre(self, pre: Any, h: Any, c: Any) -> tuple[Any, Any]:
        z = pre + _mm(h, self.recurrent_map.kernel)
        i, ig, fg, og = ops.split(z, 4, axis=-1)
        c = c * ops.sigmoid(fg + 1.0) + ops.tanh(i) * ops.sigmoid(ig)
        h = ops.tanh(c) * ops.sigmoid(og)
        return h, c

    def call(self, inputs: Any, states: Any, training: bool | None = None) -> tuple[Any, Any]:
        h, c = states
        h, c = self.step_pre(self.precompute(inputs), h, c)
        return h, [h, c]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(units=self.units)
        return config


@_register
class MixedMemoryRNN(keras.layers.Layer):
    """ncps.keras's ``MixedMemoryRNN``: a cell that runs an LSTM memory before a liquid cell.

    ``keras.layers.RNN(MixedMemoryRNN(LTCCell(wiring)))`` as in ncps.keras. Per step, with the state
    ``[c, h]`` (the LSTM memory c, then the wrapped cell's state h, flattened)::

        z = x W_in + h W_rec + b;  i, ig, fg, og = split(z, 4)
        c' = c sigmoid(fg + forget_gate_bias) + tanh(i) sigmoid(ig)
        y, h' = rnn_cell(tanh(c') sigmoid(og), h)      # the LSTM output is the cell's *input*

    This is ncps.keras's arrangement, which differs from the ``mixed_memory=True`` of the LTC / CfC
    layers (those follow ncps.torch and docs/math.md section 4: the LSTM output replaces the cell's
    state and the cell sees x): a model written with this wrapper keeps its ncps.keras meaning.
    Weights: ``input_kernel`` (I, 4n), ``recurrent_kernel`` (n, 4n), ``bias`` (4n,), n the cell's
    state size; ``inputs`` may be ``(x, dt)`` (dt is passed on to the cell).
    """

    def __init__(
        self, rnn_cell: keras.layers.Layer | dict[str, Any], forget_gate_bias: float = 1.0, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(rnn_cell, dict):
            rnn_cell = keras.saving.deserialize_keras_object(rnn_cell)
        if not isinstance(rnn_cell, keras.layers.Layer) or not hasattr(rnn_cell, "state_size"):
            raise TypeError(
                f"rnn_cell must be a Keras RNN cell (a Layer with state_size); got {type(rnn_cell).__name__}"
            )
        self.rnn_cell = rnn_cell
        self.forget_gate_bias = float(forget_gate_bias)

    @property
    def flat_size(self) -> int:
        size = self.rnn_cell.state_size
        return int(size) if isinstance(size, int) else int(sum(size))

    @property
    def state_size(self) -> list[int]:
        return [self.flat_size, self.flat_size]

    @property
    def output_size(self) -> int:
        return int(getattr(self.rnn_cell, "output_size", self.flat_size))

    @property
    def wiring(self) -> Wiring | None:
        return getattr(self.rnn_cell, "wiring", None)

    def get_initial_state(self, batch_size: Any = None) -> list[Any]:
        return [ops.zeros((batch_size, self.flat_size), dtype=self.compute_dtype) for _ in range(2)]

    def build(self, input_shape: Any) -> None:
        n_in, n = _input_dim(input_shape, "MixedMemoryRNN"), self.flat_size
        if not self.rnn_cell.built:  # a deserialized cell comes built
            self.rnn_cell.build((None, n))
        self.input_kernel = self.add_weight(name="input_kernel", shape=(n_in, 4 * n), initializer="glorot_uniform")
        self.recurrent_kernel = self.add_weight(name="recurrent_kernel", shape=(n, 4 * n), initializer="orthogonal")
        self.bias = self.add_weight(name="bias", shape=(4 * n,), initializer="zeros")

    def call(self, inputs: Any, states: Any, training: bool | None = None) -> tuple[Any, Any]:
        x, dt = split_step_inputs(inputs)
        c, h = states
        z = _mm(x, self.input_kernel) + _mm(h, self.recurrent_kernel) + self.bias
        i, ig, fg, og = ops.split(z, 4, axis=-1)
        c = c * ops.sigmoid(fg + self.forget_gate_bias) + ops.tanh(i) * ops.sigmoid(ig)
        cell_in = ops.tanh(c) * ops.sigmoid(og)
        y, new = self.rnn_cell(cell_in if dt is None else (cell_in, dt), [h], training=training)
        return y, [c, new[0] if isinstance(new, (list, tuple)) else new]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(rnn_cell=serialize_cell(self.rnn_cell), forget_gate_bias=self.forget_gate_bias)
        return config
