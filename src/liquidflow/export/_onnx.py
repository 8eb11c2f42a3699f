"""ONNX export: a step graph for streaming, and a sequence graph with dynamic batch and time.

The step graph is traced from :class:`~liquidflow.export._model.StepModule` by ``torch.onnx.export``
(dynamic batch axis). The sequence graph wraps that step graph as the body of an
ONNX ``Scan`` over the time axis, so the number of steps is an input-shape property, not a constant
baked into the graph (a traced Python loop would bake it in, as ncps' export does).

Graph interfaces (float32):

* step: inputs ``x`` (B, F), ``dt`` (B,), ``state`` (B, S) -> outputs ``y`` (B, O), ``state_out`` (B, S);
* sequence: inputs ``inputs`` (B, T, F), ``timespans`` (B, T), ``initial_state`` (B, S) ->
  outputs ``outputs`` (B, T, O), ``final_state`` (B, S);
* sequence with ``mask=True``: a fourth input ``mask`` (B, T) bool, True where a step is observed.
  At a False step the state is carried unchanged and the output is zero, as in the PyTorch layers
  with ``mask=`` (the input and ``timespans`` there are ignored: they may be NaN or 0).

``S`` is the state size (N, or 2 N with mixed memory: ``[h, c]``); start from zeros.
"""

from __future__ import annotations

import copy
import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._files import atomic_path
from ._model import StepModule, unwrap

MODES = ("step", "sequence")
EXPORTERS = ("auto", "torchscript", "dynamo")
OPSET = 20


def _export_step(step: StepModule, f: int, s: int, path: Path, exporter: str = "auto") -> None:
    """Trace the step module to ONNX with a dynamic batch axis.

    The TorchScript-based exporter is tried first: on these graphs (an unrolled solver) it is about
    30x faster than the dynamo exporter, which is the fallback should it fail or be unavailable.
    """
    x = torch.zeros(2, f)
    dt = torch.ones(2)
    state = torch.zeros(2, s)
    names = {"input_names": ["x", "dt", "state"], "output_names": ["y", "state_out"]}
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            # the exporters' own deprecation and naming notices are not the user's concern
            warnings.simplefilter("ignore")
            try:
                if exporter == "dynamo":
                    raise RuntimeError("dynamo exporter requested")
                torch.onnx.export(
                    step,
                    (x, dt, state),
                    str(path),
                    dynamic_axes={"x": {0: "batch"}, "dt": {0: "batch"}, "state": {0: "batch"}},
                    dynamo=False,
                    opset_version=OPSET,
                    **names,  # type: ignore[arg-type]
                )
                return
            except Exception:
                if exporter == "torchscript":
                    raise
                # any failure of the TorchScript exporter: fall back to the dynamo exporter
            batch = torch.export.Dim("batch", min=1)
            torch.onnx.export(
                step,
                (x, dt, state),
                str(path),
                dynamic_shapes={"x": {0: batch}, "dt": {0: batch}, "state": {0: batch}},
                dynamo=True,
                opset_version=OPSET,
                verbose=False,
                optimize=True,
                **names,  # type: ignore[arg-type]
            )
    finally:
        for lg, lv in zip(loggers, levels, strict=True):
            lg.setLevel(lv)


def to_onnx(
    model: nn.Module, path: str | Path, mode: str = "step", *, mask: bool = False, exporter: str = "auto"
) -> Path:
    """Export ``model`` to an ONNX file.

    Args:
        model: a ``liquidflow.torch.LTC`` / ``CfC`` layer, or a sequence model with ``core``, ``head``,
            ``input_mean``, ``input_std`` (normalisation and head are part of the graph).
        path: the ``.onnx`` file to write.
        mode: ``"step"`` — ``(x, dt, state) -> (y, state_out)``; ``"sequence"`` — ``(inputs,
            timespans, initial_state) -> (outputs, final_state)`` with dynamic batch and time axes.
        mask: sequence mode only: add a fourth input ``mask`` (B, T) bool. A step where it is False
            keeps the state unchanged and outputs zeros (its input and timespan are ignored), like
            the PyTorch layers' ``mask=``; ``final_state`` is the state after each sample's last
            observed step (``initial_state`` for a sample with none).
        exporter: how the step is traced: ``"auto"`` (TorchScript exporter, falling back to dynamo),
            ``"torchscript"`` or ``"dynamo"``.

    Returns:
        the path written.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}; got {mode!r}")
    if exporter not in EXPORTERS:
        raise ValueError(f"exporter must be one of {EXPORTERS}; got {exporter!r}")
    if not isinstance(mask, bool):
        raise TypeError(f"mask must be True or False; got {mask!r} ({type(mask).__name__})")
    if mask and mode != "sequence":
        raise ValueError(
            f"mask=True applies to mode='sequence' only (the step graph has no time axis: skip the call "
            f"for a missing reading); got mode={mode!r}"
        )
    import onnx
    from onnx import TensorProto, helper

    em = unwrap(model)
    step = copy.deepcopy(StepModule(em)).eval().float()  # a copy: the caller's model keeps its mode/dtype
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    f, s, o = em.input_size, em.state_size, em.output_size
    with tempfile.TemporaryDirectory() as tmp:
        step_path = Path(tmp) / "step.onnx"
        _export_step(step, f, s, step_path, exporter)
        proto = onnx.load(str(step_path), load_external_data=True)
    if proto.functions:
        from onnx import inliner

        proto = inliner.inline_local_functions(proto)
    if mode == "step":
        proto.doc_string = f"liquidflow step graph: {em.kind}; state size {s} (zeros at start)"
        _save_atomic(proto, path)
        return path

    body = proto.graph
    # Scan body: state variables first, then the scanned slices; outputs: new state, then per-step y.
    order_in = {n.name: n for n in body.input}
    order_out = {n.name: n for n in body.output}
    body_in = [order_in["state"], order_in["x"], order_in["dt"]]
    body_out = [order_out["state_out"], order_out["y"]]
    nodes, inits = list(body.node), list(body.initializer)
    if mask:
        scanned, before, after, extra_inits, body_out = _mask_step(body, s, f, o)
        body_in = [order_in["state"], *scanned]
        nodes, inits = before + nodes + after, inits + extra_inits
    body_graph = helper.make_graph(
        nodes, "liquidflow_step", body_in, body_out, initializer=inits, value_info=list(body.value_info)
    )
    scan_in = ["initial_state", "inputs", "timespans"] + (["mask"] if mask else [])
    scan = helper.make_node(
        "Scan",
        scan_in,
        ["final_state", "outputs"],
        num_scan_inputs=len(scan_in) - 1,
        scan_input_axes=[1] * (len(scan_in) - 1),
        scan_output_axes=[1],
        body=body_graph,
    )
    graph_in = [
        helper.make_tensor_value_info("initial_state", TensorProto.FLOAT, ["batch", s]),
        helper.make_tensor_value_info("inputs", TensorProto.FLOAT, ["batch", "time", f]),
        helper.make_tensor_value_info("timespans", TensorProto.FLOAT, ["batch", "time"]),
    ]
    if mask:
        graph_in.append(helper.make_tensor_value_info("mask", TensorProto.BOOL, ["batch", "time"]))
    graph = helper.make_graph(
        [scan],
        "liquidflow_sequence",
        graph_in,
        [
            helper.make_tensor_value_info("final_state", TensorProto.FLOAT, ["batch", s]),
            helper.make_tensor_value_info("outputs", TensorProto.FLOAT, ["batch", "time", o]),
        ],
    )
    seq = helper.make_model(graph, opset_imports=list(proto.opset_import), producer_name="liquidflow")
    seq.ir_version = proto.ir_version
    masked = "; input mask (B, T): False steps keep the state and output zeros" if mask else ""
    seq.doc_string = f"liquidflow sequence graph (Scan over time): {em.kind}; state size {s} (zeros at start){masked}"
    onnx.checker.check_model(seq)
    _save_atomic(seq, path)
    return path


MASK_PREFIX = "lf_mask_"  # names of the nodes and tensors the mask adds to the Scan body


def _mask_step(body: Any, s: int, f: int, o: int) -> tuple[list[Any], list[Any], list[Any], list[Any], list[Any]]:
    """Wrap the traced step (inputs ``state``, ``x``, ``dt``; outputs ``state_out``, ``y``) so that a
    step whose mask is False keeps the state and outputs zeros.

    The step's own ``x`` and ``dt`` become values computed from the scanned slices: a masked step
    runs on ``x = 0`` and ``dt = 1`` (as the PyTorch layers do), so NaN or 0 padding there cannot
    reach the arithmetic; ``Where`` then picks the old state and a zero output.

    Returns the body's scanned inputs ``(x, dt, m)``, the nodes to put before and after the step's
    nodes, the initializers they use, and the body's outputs.
    """
    from onnx import TensorProto, helper

    taken = {n.name for n in (*body.input, *body.output, *body.initializer)}
    taken |= {v for node in body.node for v in (*node.input, *node.output)}
    clash = sorted(n for n in taken if n.startswith(MASK_PREFIX))
    if clash:  # a traced name in our namespace would be silently rewired
        raise RuntimeError(f"the traced step graph already uses names starting with {MASK_PREFIX!r}: {clash[:3]}")
    p = MASK_PREFIX
    inputs = [
        helper.make_tensor_value_info(p + "x", TensorProto.FLOAT, ["batch", f]),
        helper.make_tensor_value_info(p + "dt", TensorProto.FLOAT, ["batch"]),
        helper.make_tensor_value_info(p + "m", TensorProto.BOOL, ["batch"]),
    ]
    inits = [
        helper.make_tensor(p + "zero", TensorProto.FLOAT, [], [0.0]),
        helper.make_tensor(p + "one", TensorProto.FLOAT, [], [1.0]),
        helper.make_tensor(p + "axis1", TensorProto.INT64, [1], [1]),
    ]
    before = [  # (B,) mask -> (B, 1) for the feature axis; the step's x and dt
        helper.make_node("Unsqueeze", [p + "m", p + "axis1"], [p + "m_col"], name=p + "col"),
        helper.make_node("Where", [p + "m_col", p + "x", p + "zero"], ["x"], name=p + "x_in"),
        helper.make_node("Where", [p + "m", p + "dt", p + "one"], ["dt"], name=p + "dt_in"),
    ]
    after = [  # carry the state, zero the output
        helper.make_node("Where", [p + "m_col", "state_out", "state"], [p + "state_out"], name=p + "carry"),
        helper.make_node("Where", [p + "m_col", "y", p + "zero"], [p + "y"], name=p + "zero_y"),
    ]
    outputs = [
        helper.make_tensor_value_info(p + "state_out", TensorProto.FLOAT, ["batch", s]),
        helper.make_tensor_value_info(p + "y", TensorProto.FLOAT, ["batch", o]),
    ]
    return inputs, before, after, inits, outputs


FORMAT_VERSION = 1  # liquidflow's graph interface (input/output names and layout), in the model metadata


def _save_atomic(proto: Any, path: Path) -> None:
    """Save with the format version in ``metadata_props`` via a temporary file and ``os.replace``."""
    import onnx
    from onnx import helper

    props = {m.key: m.value for m in proto.metadata_props}
    helper.set_model_props(proto, {**props, "liquidflow_format_version": str(FORMAT_VERSION)})
    with atomic_path(path) as tmp:
        onnx.save(proto, str(tmp))


def run_onnx(path: str | Path, feeds: dict[str, Any]) -> list[Any]:
    """Run an exported graph with onnxruntime (CPU): a convenience for checks and examples."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return list(sess.run(None, feeds))
