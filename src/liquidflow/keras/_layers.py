"""Keras 3 sequence layers LTC and CfC: ``keras.layers.RNN`` with irregular time and mixed memory.

Why one file (about 560 lines): ``LTC`` and ``CfC`` are thin subclasses (arguments, cell, config) of
``_LiquidRNN``, which holds everything else — the precomputing ``_SequenceCell`` around the cell, the
``[x, timespans]`` input, masks, mixed memory, the projection and the torch-backend kernels. The
three are read together, as :mod:`liquidflow.torch._sequence` is for the torch layers.

Both are ``keras.layers.RNN`` subclasses, so ``return_sequences``, ``return_state``, ``stateful``,
``go_backwards``, ``unroll``, masking (from a ``Masking`` layer or ``mask=``) and ``Bidirectional``
behave as for any Keras RNN. Irregular time is a second input::

    y = LTC(wiring)([x, timespans])      # x (B, T, F); timespans (B, T) or (B, T, 1), per sample

``timespans[b, t]`` is the time elapsed before step ``t`` of sample ``b`` (1.0 when not given).

Everything that does not depend on the state is computed once for the whole sequence before the
loop (``_SequenceCell.precompute``: CfC's input part of its first linear map as one (B·T) x I
product, LTC's input mapping, sensory synapses, leak terms and C_m / h, the mixed-memory LSTM's
input product), and the loop (``keras.layers.RNN``'s, ``keras.src.backend.rnn``) runs over these
per-step tensors, with the timespan as their last channel. Since the loop sees one tensor per step,
masks, ``go_backwards`` and ``Bidirectional`` keep each step paired with its own terms and timespan.
The weights the recurrence uses (softplus'ed, masked, concatenated) are derived once per call too.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from .._frontend import cfc_backbone, cfc_options, check_wired_cfc_options, ltc_options
from ..wirings import Wiring
from ._cells import CfCCell, MixedMemoryLSTMCell, WiredCfCCell
from ._common import _check_int, _SkipWhenLoadedFromNcps, as_wiring, serialize_cell
from ._ltc_cell import LTCCell

try:  # the loop keras.layers.RNN runs; not public API (keras.ops has no rnn), hence the fallback below
    from keras.src.backend import rnn as _backend_rnn
except ImportError:  # pragma: no cover - depends on the Keras version
    _backend_rnn = None

_register = keras.saving.register_keras_serializable(package="liquidflow")


def _on_torch() -> bool:
    """On the torch backend the sequences may run liquidflow._ops' kernels (``_torch_kernels``)."""
    return keras.backend.backend() == "torch"


def _is_shape(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(d is None or isinstance(d, int) for d in value)


def _split_shapes(sequences_shape: Any) -> tuple[tuple[Any, ...], tuple[Any, ...] | None]:
    if _is_shape(sequences_shape):
        return tuple(sequences_shape), None
    if isinstance(sequences_shape, (list, tuple)) and len(sequences_shape) in (1, 2):
        x_shape = tuple(sequences_shape[0])
        ts_shape = tuple(sequences_shape[1]) if len(sequences_shape) == 2 else None
        return x_shape, ts_shape
    raise ValueError(f"inputs must be x or [x, timespans]; got shapes {sequences_shape}")


def _first_mask(mask: Any) -> Any:
    if isinstance(mask, (list, tuple)):
        return mask[0] if mask else None
    return mask


@_register
class _SequenceCell(_SkipWhenLoadedFromNcps, keras.layers.Layer):
    """The cell the RNN loop runs: the liquid cell after the mixed-memory LSTM, from precomputed terms.

    Input per step: a row (B, P) of ``precompute``, the last channel being dt. State: [h] or [h, c]
    (mixed memory). It is built with the raw step shape (B, F + 1) (the layer's x plus dt).
    """

    def __init__(self, cell: keras.layers.Layer, mixed_memory: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cell = cell
        self.lstm = MixedMemoryLSTMCell(cell.state_size, name="lstm", dtype=self.dtype_policy) if mixed_memory else None

    @property
    def state_size(self) -> Any:
        n = self.cell.state_size
        return [n, n] if self.lstm is not None else n

    @property
    def output_size(self) -> int:
        return int(self.cell.output_size)

    # what ncps users read on ``layer.cell`` (there the liquid cell, or a MixedMemoryRNN around it)
    @property
    def rnn_cell(self) -> keras.layers.Layer:
        """The liquid cell (LTCCell, CfCCell or WiredCfCCell), as ``MixedMemoryRNN.rnn_cell`` in ncps."""
        return self.cell

    @property
    def wiring(self) -> Wiring | None:
        """The liquid cell's wiring (None for a dense CfCCell)."""
        return getattr(self.cell, "wiring", None)

    @property
    def units(self) -> int:
        """The liquid cell's state size (all neurons)."""
        return int(self.cell.state_size)

    @property
    def motor_size(self) -> int:
        return int(self.cell.output_size)

    def build(self, input_shape: Any) -> None:
        step_shape = (input_shape[0], input_shape[-1] - 1)
        self.cell.build(step_shape)
        self.cell.built = True
        if self.lstm is not None:
            self.lstm.build(step_shape)
            self.lstm.built = True

    def precompute(self, x: Any, ts: Any) -> Any:
        """x (B, T, F), ts (B, T, 1) -> the loop's per-step input (B, T, P): [cell terms, LSTM terms, dt]."""
        parts = [self.cell.precompute(x, ts)]
        if self.lstm is not None:
            parts.append(self.lstm.precompute(x))
        parts.append(ts)
        return ops.concatenate(parts, axis=-1)

    def step_weights(self) -> Any:
        return self.cell.step_weights()

    def step(
        self, inputs: Any, states: Any, weights: Any, training: bool | None = None, recurrent_mask: Any = None
    ) -> tuple[Any, Any]:
        """One step of the loop from a row of ``precompute`` (B, P) and the derived ``weights``.

        ``recurrent_mask`` (B, N): the recurrent dropout mask, multiplied into the state where it
        enters the recurrent products (a CfC cell uses its state nowhere else; the LSTM's h).
        """
        k = self.cell.pre_size
        if self.lstm is not None:
            pre, lstm_pre, dt = ops.split(inputs, [k, k + 4 * self.lstm.units], axis=-1)
            h, c = states
            if recurrent_mask is not None:
                h = h * recurrent_mask
            h, c = self.lstm.step_pre(lstm_pre, h, c)
            y, h = self.cell.step_pre(pre, h, dt, weights, training=training)
            return y, [h, c]
        pre, dt = ops.split(inputs, [k], axis=-1)
        h = states[0] if isinstance(states, (list, tuple)) else states
        if recurrent_mask is not None:
            h = h * recurrent_mask
        y, h = self.cell.step_pre(pre, h, dt, weights, training=training)
        return y, [h]

    def call(self, inputs: Any, states: Any, training: bool | None = None) -> tuple[Any, Any]:
        """``step`` deriving its weights itself: what keras.layers.RNN's own loop calls (the fallback)."""
        return self.step(inputs, states, self.step_weights(), training=training)

    def get_config(self) -> dict[str, Any]:  # only used through the owning layer
        config = super().get_config()
        config.update(cell=keras.saving.serialize_keras_object(self.cell), mixed_memory=self.lstm is not None)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> _SequenceCell:
        config = dict(config)
        config["cell"] = keras.saving.deserialize_keras_object(config["cell"])
        return cls(**config)


class _LiquidRNN(keras.layers.RNN):
    """Shared by LTC and CfC: timespans as a second input, mixed memory, optional projection."""

    return_sequences: bool
    zero_output_for_mask: bool

    def __init__(
        self,
        cell: keras.layers.Layer,
        mixed_memory: bool,
        proj_size: int | None,
        return_sequences: bool,
        return_state: bool,
        go_backwards: bool,
        stateful: bool,
        unroll: bool,
        zero_output_for_mask: bool | None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        kernel_regularizer: Any = None,
        recurrent_regularizer: Any = None,
        **kwargs: Any,
    ) -> None:
        if proj_size is not None:
            proj_size = _check_int("proj_size", proj_size, 1)
        for name, rate in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not 0.0 <= float(rate) < 1.0:
                raise ValueError(f"{name} must be in [0, 1); got {rate}")
        # Padded steps give zero outputs in sequences (as in liquidflow.torch); with
        # return_sequences=False the output is that of the last observed step.
        if zero_output_for_mask is None:
            zero_output_for_mask = bool(return_sequences)
        dtype = kwargs.get("dtype")
        seq_cell = _SequenceCell(cell, bool(mixed_memory), name="sequence_cell", dtype=dtype)
        super().__init__(
            seq_cell,
            return_sequences=bool(return_sequences),
            return_state=bool(return_state),
            go_backwards=bool(go_backwards),
            stateful=bool(stateful),
            unroll=bool(unroll),
            zero_output_for_mask=bool(zero_output_for_mask),
            **kwargs,
        )
        self.mixed_memory = bool(mixed_memory)
        self.proj_size = proj_size
        self.fc = keras.layers.Dense(proj_size, name="fc", dtype=self.dtype_policy) if proj_size else None
        # Keras RNN options, with Keras' meaning: one dropout mask per sequence on the inputs (and on
        # the state where it enters the recurrent product), in training only; regularizer losses on
        # the input and recurrent kernels (the cells' ``regularized_kernels``), added at each call.
        self.dropout = float(dropout)
        self.recurrent_dropout = float(recurrent_dropout)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = keras.regularizers.get(recurrent_regularizer)
        self.input_dropout = (
            keras.layers.Dropout(self.dropout, noise_shape=(None, 1, None), name="input_dropout")
            if self.dropout > 0
            else None
        )
        self.seed_generator = keras.random.SeedGenerator() if self.recurrent_dropout > 0 else None
        self._recurrent_mask: Any = None

    # ------------------------------------------------------------------ structure
    @property
    def rnn_cell(self) -> keras.layers.Layer:
        """The liquid cell (LTCCell, CfCCell or WiredCfCCell), as ``rnn_cell`` in liquidflow.torch."""
        return self.cell.cell

    @property
    def lstm(self) -> MixedMemoryLSTMCell | None:
        """The mixed-memory LSTM cell, or None."""
        return self.cell.lstm

    @property
    def motor_size(self) -> int:
        return int(self.rnn_cell.output_size)

    @property
    def out_features(self) -> int:
        return self.proj_size if self.proj_size else self.motor_size

    @property
    def input_size(self) -> int | None:
        return getattr(self.rnn_cell, "input_size", None) or getattr(self.rnn_cell, "sensory_size", None)

    # ------------------------------------------------------------------ shapes
    def _check_x_shape(self, x_shape: tuple[Any, ...]) -> None:
        if len(x_shape) != 3:
            raise ValueError(
                f"{type(self).__name__} input must be 3-D (batch, time, features); got shape {x_shape}. "
                "For one unbatched sequence add a batch axis: x[None]"
            )
        if x_shape[-1] is None:
            raise ValueError(f"{type(self).__name__} needs a known number of features (last axis); got {x_shape}")
        n_in = self.input_size
        if self.built and n_in is not None and x_shape[-1] != n_in:
            raise ValueError(
                f"{type(self).__name__} input has {x_shape[-1]} features (last axis) but the layer was built for {n_in}"
            )

    def _check_ts_shape(self, x_shape: tuple[Any, ...], ts_shape: tuple[Any, ...] | None) -> None:
        if ts_shape is None:
            return
        ok = len(ts_shape) in (2, 3) and (len(ts_shape) == 2 or ts_shape[2] == 1)
        if ok:
            for got, want in zip(ts_shape[:2], x_shape[:2], strict=True):
                if got is not None and want is not None and got != want:
                    ok = False
        if not ok:
            raise ValueError(
                f"timespans must have shape (batch, time) or (batch, time, 1) = {x_shape[:2]} "
                f"(one elapsed time per sample and step); got shape {ts_shape}"
            )

    def build(self, sequences_shape: Any, initial_state_shape: Any = None) -> None:
        x_shape, ts_shape = _split_shapes(sequences_shape)
        self._check_x_shape(x_shape)
        self._check_ts_shape(x_shape, ts_shape)
        super().build((x_shape[0], x_shape[1], x_shape[2] + 1), initial_state_shape)
        if self.fc is not None:
            self.fc.build((None, self.motor_size))

    def compute_output_shape(self, sequences_shape: Any, initial_state_shape: Any = None) -> Any:
        x_shape, _ = _split_shapes(sequences_shape)
        out = super().compute_output_shape((x_shape[0], x_shape[1], (x_shape[2] or 0) + 1), initial_state_shape)
        if self.fc is None:
            return out
        if self.return_state:
            first = (*out[0][:-1], self.proj_size)
            return (first, *out[1:])
        return (*out[:-1], self.proj_size)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        m = _first_mask(mask)
        out = m if self.return_sequences else None
        if self.return_state:
            n_states = 2 if self.mixed_memory else 1
            return [out] + [None] * n_states
        return out

    # ------------------------------------------------------------------ run
    def call(self, sequences: Any, initial_state: Any = None, mask: Any = None, training: bool = False) -> Any:
        if isinstance(sequences, (list, tuple)):
            if len(sequences) not in (1, 2):
                raise ValueError(f"inputs must be x or [x, timespans]; got {len(sequences)} tensors")
            x = sequences[0]
            ts = sequences[1] if len(sequences) == 2 else None
        else:
            x, ts = sequences, None
        x = ops.convert_to_tensor(x)
        self._check_x_shape(tuple(x.shape))
        self._add_regularizer_losses()
        if training and self.input_dropout is not None:
            x = self.input_dropout(x, training=True)  # the same mask at every step of a sequence
        mask = _first_mask(mask)
        ones = ops.ones_like(x[:, :, :1])
        if ts is None:
            ts = ones
        else:
            ts = ops.cast(ops.convert_to_tensor(ts), x.dtype)
            self._check_ts_shape(tuple(x.shape), tuple(ts.shape))
            if len(ts.shape) == 2:
                ts = ops.expand_dims(ts, -1)
        if mask is not None:
            mask = ops.cast(mask, "bool")
            # padded steps may hold any timespan (e.g. 0): give them a harmless one, so that
            # nothing non-finite appears in the discarded branch (and its gradient)
            ts = ops.where(ops.expand_dims(mask, -1), ts, ones)
        if _on_torch():
            result = self._kernel_call(x, ts, mask, initial_state, training)
            if result is not None:
                return self._project(result, mask)
        packed = self.cell.precompute(x, ts)  # (B, T, P): the state-independent work, once
        if training and self.seed_generator is not None:
            keep = ops.ones((ops.shape(x)[0], self.rnn_cell.state_size), dtype=x.dtype)
            self._recurrent_mask = keras.random.dropout(keep, self.recurrent_dropout, seed=self.seed_generator)
        try:
            if mask is not None and not self.return_sequences:
                result = self._call_last_observed(packed, initial_state, mask, training)
            else:
                result = super().call(packed, initial_state=initial_state, mask=mask, training=training)
        finally:
            self._recurrent_mask = None
        return self._project(result, mask)

    def _add_regularizer_losses(self) -> None:
        """kernel_regularizer / recurrent_regularizer of each input / recurrent kernel, as losses of this call."""
        if self.kernel_regularizer is None and self.recurrent_regularizer is None:
            return
        inputs, recurrent = self.rnn_cell.regularized_kernels()
        if self.lstm is not None:
            lstm_in, lstm_rec = self.lstm.regularized_kernels()
            inputs, recurrent = inputs + lstm_in, recurrent + lstm_rec
        for regularizer, kernels in ((self.kernel_regularizer, inputs), (self.recurrent_regularizer, recurrent)):
            if regularizer is not None:
                for kernel in kernels:
                    self.add_loss(regularizer(kernel))

    def _project(self, result: Any, mask: Any) -> Any:
        """The optional projection ``fc`` of the loop's or the kernel's outputs."""
        if self.fc is None:
            return result
        if self.return_state:
            out, states = result[0], list(result[1:])
        else:
            out, states = result, []
        # not self.fc(out): Dense uses ops.matmul, which computes float64 in float32 on the torch backend
        spec = "btk,km->btm" if self.return_sequences else "bk,km->bm"
        out = ops.einsum(spec, out, self.fc.kernel) + self.fc.bias
        if self.return_sequences and mask is not None:
            out = out * ops.cast(ops.expand_dims(mask, -1), out.dtype)
        return (out, *states) if self.return_state else out

    def _kernel_call(self, x: Any, ts: Any, mask: Any, initial_state: Any, training: Any) -> Any:
        """On the torch backend: the call run by liquidflow._ops' kernels, or None (the loop runs it).

        Does what ``keras.layers.RNN.call`` does around its loop (initial or stateful state,
        ``go_backwards``, ``return_state``), with the cell's whole sequence as one kernel call
        (see ``_torch_kernels``).
        """
        from . import _torch_kernels

        if _torch_kernels.why_not(self, x, ts, mask, bool(training)) is not None:
            return None
        if initial_state is None:
            if self.stateful:
                h0 = ops.convert_to_tensor(self.states[0]).clone()  # assigned in place below
            else:
                h0 = ops.zeros((ops.shape(x)[0], self.rnn_cell.state_size), dtype=x.dtype)
        else:
            h0 = initial_state[0] if isinstance(initial_state, (list, tuple)) else initial_state
            h0 = ops.convert_to_tensor(h0, dtype=x.dtype)
        if self.go_backwards:  # the loop reads the steps last to first, and returns them in that order
            x, ts = ops.flip(x, 1), ops.flip(ts, 1)
            mask = None if mask is None else ops.flip(mask, 1)
        result = _torch_kernels.run(self, x, ts, mask, h0, bool(training))
        if result is None:
            return None
        out, h = result
        if self.stateful:
            self.states[0].assign(h)
        return (out, h) if self.return_state else out

    def inner_loop(self, sequences: Any, initial_state: Any, mask: Any, training: bool = False) -> Any:
        """``keras.layers.RNN.inner_loop`` with the cell's ``step`` and weights derived once, not per step.

        The step calls the sequence cell's methods directly: ``Layer.__call__`` per step (input
        conversion, name and autocast scopes) costs more than the step's own arithmetic here. Without
        ``keras.src.backend.rnn`` (a Keras that moved it) the RNN's own loop runs ``_SequenceCell.call``,
        which gives the same values, more slowly.
        """
        if _backend_rnn is None:  # pragma: no cover - depends on the Keras version
            return super().inner_loop(sequences, initial_state, mask, training=training)
        cell: _SequenceCell = self.cell
        weights = cell.step_weights()
        copy_states = keras.backend.backend() == "torch" and self.stateful
        recurrent_mask = self._recurrent_mask

        def step(inputs: Any, states: Any) -> tuple[Any, Any]:
            if copy_states:  # as keras.layers.RNN: keeps autograd from seeing the state variables change in place
                states = [ops.copy(s) for s in states]
            return cell.step(inputs, states, weights, training=training, recurrent_mask=recurrent_mask)

        if not isinstance(initial_state, (list, tuple)):
            initial_state = [initial_state]
        return _backend_rnn(
            step,
            sequences,
            list(initial_state),
            go_backwards=self.go_backwards,
            mask=mask,
            unroll=self.unroll,
            input_length=sequences.shape[1],
            zero_output_for_mask=self.zero_output_for_mask,
            return_all_outputs=self.return_sequences,
        )

    def _call_last_observed(self, packed: Any, initial_state: Any, mask: Any, training: bool) -> Any:
        """return_sequences=False with a mask: the output of each sample's last observed step.

        Runs the loop with all outputs (padded ones zero) and picks that step. Not the Keras
        ``zero_output_for_mask=False`` path, which on the JAX backend takes the first state for the
        previous output (wrong when, as here, the output is not the state).
        """
        saved: tuple[bool, bool] = (bool(self.return_sequences), bool(self.zero_output_for_mask))
        self.return_sequences = self.zero_output_for_mask = True
        try:
            result = super().call(packed, initial_state=initial_state, mask=mask, training=training)
        finally:
            self.return_sequences, self.zero_output_for_mask = saved
        seq = result[0] if self.return_state else result  # (B, T, out) in processing order
        order = ops.flip(mask, axis=1) if self.go_backwards else mask
        steps = ops.shape(order)[1]
        last = steps - 1 - ops.argmax(ops.flip(ops.cast(order, "int32"), axis=1), axis=1)  # (B,)
        out = ops.take_along_axis(seq, ops.reshape(ops.cast(last, "int32"), (-1, 1, 1)), axis=1)[:, 0]
        return (out, *result[1:]) if self.return_state else out

    # ------------------------------------------------------------------ weights
    def load_own_variables(self, store: Any) -> None:
        """Keras' loading, and weights saved by the same ncps.keras layer (see ``_ncps_weights``)."""
        from . import _ncps_weights

        if _ncps_weights.is_ncps_file(store):
            _ncps_weights.load(self, store)
        super().load_own_variables(store)

    # ------------------------------------------------------------------ config
    def _base_config(self) -> dict[str, Any]:
        config = super().get_config()
        # 'cell' as in keras.layers.RNN and ncps' layers: here the liquid cell's serialized config
        # (its wiring and options); from_config rebuilds the cell from the layer's own arguments.
        config["cell"] = serialize_cell(self.rnn_cell)
        config.update(
            mixed_memory=self.mixed_memory,
            proj_size=self.proj_size,
            dropout=self.dropout,
            recurrent_dropout=self.recurrent_dropout,
            kernel_regularizer=keras.regularizers.serialize(self.kernel_regularizer),
            recurrent_regularizer=keras.regularizers.serialize(self.recurrent_regularizer),
        )
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: Any = None) -> _LiquidRNN:
        config = dict(config)
        config.pop("cell", None)  # absent from configs saved before it was added
        units = config.pop("units")
        if isinstance(units, dict):
            units = Wiring.from_config(units)
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.dtype_policies.deserialize(config["dtype"])
        return cls(units, **config)


@_register
class LTC(_LiquidRNN):
    """Liquid time-constant layer (docs/math.md sections 2 and 5), a Keras RNN.

    Args:
        units: a :class:`~liquidflow.wirings.Wiring` (copied; built with the input size when the
            layer is built) or an int (fully connected).
        mixed_memory: run an LSTM before the liquid cell (state becomes [h, c]).
        input_mapping / output_mapping, ode_unfolds, epsilon, solver: as for :class:`LTCCell`.
        proj_size: optional Dense projection of the output.
        return_sequences (default False, as in Keras and ncps' Keras layers), return_state,
        go_backwards, stateful, unroll: as for ``keras.layers.RNN``.
        dropout: input dropout rate, one mask per sequence, in training only (as Keras' RNN layers).
            recurrent_dropout is refused: see the message (docs/porting-keras.md).
        kernel_regularizer / recurrent_regularizer: losses on the sensory / recurrent synaptic
            weights as they enter the equations, softplus(raw) x mask (and the mixed-memory LSTM's
            input / recurrent kernels).

    Call: ``layer(x)`` or ``layer([x, timespans])`` with ``x`` (B, T, F) and ``timespans`` (B, T) or
    (B, T, 1); the output is the motor neurons (``wiring.output_dim``).
    """

    def __init__(
        self,
        units: Wiring | int | dict[str, Any],
        mixed_memory: bool = False,
        input_mapping: str | None = "affine",
        output_mapping: str | None = "affine",
        ode_unfolds: int = 6,
        epsilon: float = 1e-8,
        solver: str = "semi_implicit",
        proj_size: int | None = None,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        zero_output_for_mask: bool | None = None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        kernel_regularizer: Any = None,
        recurrent_regularizer: Any = None,
        **kwargs: Any,
    ) -> None:
        if kwargs.pop("initialization_ranges", None) is not None:
            raise ValueError(
                "LTC takes no initialization_ranges (an ncps.keras argument): the ranges are those of "
                "docs/math.md; to start elsewhere, build the layer and assign the cell's weights "
                "(positive ones as gleak_raw = inverse softplus, see LTCCell)"
            )
        if recurrent_dropout:
            raise ValueError(
                f"LTC does not support recurrent_dropout (got {recurrent_dropout}): its state is the membrane "
                "potential the ODE integrates, which a dropout mask would reset, not a signal into a recurrent "
                "kernel; use dropout= (inputs), a Dropout layer after the LTC, or CfC(recurrent_dropout=...)"
            )
        wiring = as_wiring(units, "units")
        cell = LTCCell(
            wiring,
            input_mapping,
            output_mapping,
            ode_unfolds,
            epsilon,
            solver,
            name="ltc_cell",
            dtype=kwargs.get("dtype"),
        )
        super().__init__(
            cell,
            mixed_memory,
            proj_size,
            return_sequences,
            return_state,
            go_backwards,
            stateful,
            unroll,
            zero_output_for_mask,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer,
            **kwargs,
        )

    @property
    def wiring(self) -> Wiring:
        return self.rnn_cell.wiring

    def get_config(self) -> dict[str, Any]:
        config = self._base_config()
        cell = self.rnn_cell
        config.update(units=cell.wiring.get_config(), **ltc_options(cell))
        return config


@_register
class CfC(_LiquidRNN):
    """Closed-form continuous-time layer (docs/math.md sections 3 and 5), a Keras RNN.

    Args:
        units: an int (a :class:`CfCCell` with a backbone MLP) or a Wiring (a :class:`WiredCfCCell`;
            backbone options are then not allowed).
        mode: ``"default"``, ``"no_gate"`` or ``"pure"``. activation: the backbone activation.
        backbone_units / backbone_layers / backbone_dropout: defaults 128 / 1 / 0 without a wiring.
        head_activation: ``"tanh"`` or the CfC paper's ``"lecun_tanh"`` (dense CfC only).
        mixed_memory, proj_size, return_sequences (default False), return_state, go_backwards,
        stateful, unroll: as for :class:`LTC`.
        dropout / recurrent_dropout: rates of one mask per sequence on the inputs / on the state
            where it enters the recurrent product, in training only (as Keras' RNN layers).
        kernel_regularizer / recurrent_regularizer: losses on the rows of the linear maps that
            multiply inputs (and the later backbone layers and heads) / the state (see
            ``CfCCell.regularized_kernels``), and on the mixed-memory LSTM's kernels.
    """

    def __init__(
        self,
        units: Wiring | int | dict[str, Any],
        mixed_memory: bool = False,
        mode: str = "default",
        activation: str = "lecun_tanh",
        backbone_units: int | None = None,
        backbone_layers: int | None = None,
        backbone_dropout: float | None = None,
        proj_size: int | None = None,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        zero_output_for_mask: bool | None = None,
        head_activation: str = "tanh",
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        kernel_regularizer: Any = None,
        recurrent_regularizer: Any = None,
        **kwargs: Any,
    ) -> None:
        if kwargs.pop("sparsity_mask", None) is not None:
            raise ValueError(
                "CfC takes no sparsity_mask (an ncps.keras argument): pass a wiring as units, or build "
                "keras.layers.RNN(CfCCell(units, sparsity_mask=...))"
            )
        if not kwargs.pop("fully_recurrent", True):
            raise ValueError(
                "CfC supports only fully_recurrent=True (ncps' default: every wiring layer sees all of its "
                "own neurons); for sparse recurrent synapses use LTC with the wiring"
            )
        cell: keras.layers.Layer
        if isinstance(units, (Wiring, dict)):
            check_wired_cfc_options(backbone_units, backbone_layers, backbone_dropout, head_activation)
            cell = WiredCfCCell(as_wiring(units), mode, name="wired_cfc_cell", dtype=kwargs.get("dtype"))
            backbone: tuple[Any, Any, Any] = (None, None, None)
        elif isinstance(units, int) and not isinstance(units, bool):
            backbone = cfc_backbone(backbone_units, backbone_layers, backbone_dropout)
            cell = CfCCell(
                units,
                mode,
                activation,
                *backbone,
                head_activation=head_activation,
                name="cfc_cell",
                dtype=kwargs.get("dtype"),
            )
        else:
            raise TypeError(f"units must be an int or a Wiring; got {type(units).__name__}")
        super().__init__(
            cell,
            mixed_memory,
            proj_size,
            return_sequences,
            return_state,
            go_backwards,
            stateful,
            unroll,
            zero_output_for_mask,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer,
            **kwargs,
        )
        self.mode = mode
        self.activation = activation
        self.backbone_units, self.backbone_layers, self.backbone_dropout = backbone
        self.head_activation = head_activation

    @property
    def wiring(self) -> Wiring | None:
        return self.rnn_cell.wiring if isinstance(self.rnn_cell, WiredCfCCell) else None

    def get_config(self) -> dict[str, Any]:
        config = self._base_config()
        wiring = self.wiring
        config.update(units=wiring.get_config() if wiring is not None else self.rnn_cell.units, **cfc_options(self))
        return config
