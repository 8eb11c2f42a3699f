"""Speed of liquidflow.keras on every Keras backend, against keras.layers.LSTM(64) and liquidflow.torch.

Not a test (no wall-clock asserts anywhere): docs/performance.md ("Keras") and docs/keras.md quote its
figures. A Keras backend is fixed per process, so every measurement runs in its own process.

    python benchmarks/keras_speed.py                     # everything, interleaved rounds -> a markdown table
    python benchmarks/keras_speed.py --backends torch    # some backends only (tensorflow, torch, jax)
    KERAS_BACKEND=torch python benchmarks/keras_speed.py ltc fit     # one measurement, one JSON line
    LIQUIDFLOW_SPEED_REF=torch python benchmarks/keras_speed.py ltc fit   # liquidflow.torch, same task
    python benchmarks/keras_speed.py torch-ab ltc 5   # Keras-on-torch vs liquidflow.torch, one process, alternating

Models (20 inputs): ``ltc`` = LTC(AutoNCP(32, 10)), ``cfc`` = CfC(64) (backbone 128), ``cfc-ncp`` =
CfC(AutoNCP(32, 10)), ``lstm`` = keras.layers.LSTM(64) (torch reference: torch.nn.LSTM(20, 64)).

``fit`` (the issue's protocol): ``model.fit`` of ``Sequential([Input((None, 20)), layer
(return_sequences=True), Dense(1)])``, Adam, MSE, on NSEQ (default 1,024) random sequences of 100 steps,
batch 32; one warm-up epoch (compilation), then REPS (default 3) epochs; the median epoch's time per
batch, in ms. The torch reference runs the same epochs as a plain PyTorch loop. ``fwdbwd``: forward +
backward of one batch (32 x 100 x 20), the gradient of the summed output w.r.t. every weight, ms
(TensorFlow inside a ``tf.function``, JAX under ``jax.jit``, torch eager), median of REPS after a warm-up.

Threads: THREADS (default 2) for every backend (torch.set_num_threads, TensorFlow's intra-op pool,
OMP; JAX/XLA's CPU client takes no thread count and uses its own pool).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

B, T, F = 32, 100, 20
MODELS = ("ltc", "cfc", "cfc-ncp", "lstm")


def median_time(fn: Callable[[], Any], n: int) -> float:
    fn()  # warm-up (and tracing / compilation)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def data(nseq: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(B, T, F)).astype("float32")
    xs = rng.normal(size=(nseq, T, F)).astype("float32")
    ys = np.tanh(xs[..., :1]).astype("float32")
    return x, xs, ys


def torch_reference(model: str, what: str, reps: int, nseq: int) -> float:
    import torch

    from liquidflow.torch import LTC, CfC
    from liquidflow.wirings import AutoNCP

    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    torch.manual_seed(0)
    x, xs, ys = data(nseq)
    layer: torch.nn.Module
    if model == "lstm":
        layer = torch.nn.LSTM(F, 64, batch_first=True)
    elif model == "cfc":
        layer = CfC(F, 64, return_sequences=True)
    elif model == "cfc-ncp":
        layer = CfC(F, AutoNCP(32, 10), return_sequences=True)
    else:
        layer = LTC(F, AutoNCP(32, 10), return_sequences=True)
    head = torch.nn.Linear(64 if model in ("cfc", "lstm") else 10, 1)
    if what == "fwdbwd":
        xt = torch.from_numpy(x)

        def step() -> None:
            y, _ = layer(xt)
            y.sum().backward()

        return median_time(step, reps) * 1e3
    opt = torch.optim.Adam([*layer.parameters(), *head.parameters()], lr=0.01)
    X, Y = torch.from_numpy(xs), torch.from_numpy(ys)

    def epoch() -> None:
        for i in range(0, len(X), B):
            opt.zero_grad()
            y, _ = layer(X[i : i + B])
            ((head(y) - Y[i : i + B]) ** 2).mean().backward()
            opt.step()

    return median_time(epoch, reps) * 1e3 / (len(X) // B)


def keras_layer(model: str) -> Any:
    import keras
    import liquidflow.keras as lk
    from liquidflow.wirings import AutoNCP

    if model == "lstm":
        return keras.layers.LSTM(64, return_sequences=True)
    if model == "cfc":
        return lk.CfC(64, return_sequences=True)
    if model == "cfc-ncp":
        return lk.CfC(AutoNCP(32, 10), return_sequences=True)
    return lk.LTC(AutoNCP(32, 10), return_sequences=True)


def keras_run(model: str, what: str, reps: int, nseq: int) -> float:
    import keras

    keras.utils.set_random_seed(0)
    x, xs, ys = data(nseq)
    layer = keras_layer(model)
    backend = keras.backend.backend()
    if what == "fwdbwd":
        layer.build((None, None, F))
        if backend == "tensorflow":
            import tensorflow as tf

            xt = tf.constant(x)

            @tf.function
            def grads() -> Any:
                with tf.GradientTape() as tape:
                    loss = tf.reduce_sum(layer(xt))
                return tape.gradient(loss, layer.trainable_variables)

            return median_time(lambda: [g.numpy() for g in grads()], reps) * 1e3
        if backend == "torch":
            import torch

            xt = torch.from_numpy(x)
            return median_time(lambda: layer(xt).sum().backward(), reps) * 1e3
        import jax

        trainable = [v.value for v in layer.trainable_variables]
        fixed = [v.value for v in layer.non_trainable_variables]

        def loss(tv: Any, xv: Any) -> Any:
            y, _ = layer.stateless_call(tv, fixed, xv)
            return y.sum()

        g = jax.jit(jax.grad(loss))
        return median_time(lambda: jax.block_until_ready(g(trainable, x)), reps) * 1e3
    jit: Any = {"0": False, "1": True}.get(os.environ.get("JIT", ""), "auto")
    net = keras.Sequential([keras.Input((None, F)), layer, keras.layers.Dense(1)])
    net.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="mean_squared_error", jit_compile=jit)
    fit = lambda: net.fit(xs, ys, epochs=1, batch_size=B, verbose=0, shuffle=False)  # noqa: E731
    return median_time(fit, reps) * 1e3 / (nseq // B)


def one(model: str, what: str) -> None:
    reps = int(os.environ.get("REPS", "3"))
    nseq = int(os.environ.get("NSEQ", "1024"))
    if os.environ.get("LIQUIDFLOW_SPEED_REF") == "torch":
        value, who = torch_reference(model, what, reps, nseq), "liquidflow.torch"
    else:
        value, who = keras_run(model, what, reps, nseq), f"keras-{os.environ.get('KERAS_BACKEND')}"
    print(json.dumps({"who": who, "model": model, "what": what, "value": value, "unit": "ms"}))


def torch_ab(model: str, epochs: int, nseq: int) -> dict[str, float]:
    """Keras on its torch backend vs liquidflow.torch in ONE process, epochs alternating (A, B, A, B...):
    load drift on a shared machine hits both alike. Same initial weights; ms per batch, medians."""
    os.environ["KERAS_BACKEND"] = "torch"
    import torch

    import keras
    from liquidflow.compat.keras_torch import keras_from_torch
    from liquidflow.torch import LTC, CfC
    from liquidflow.wirings import AutoNCP

    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    torch.manual_seed(0)
    _, xs, ys = data(nseq)
    if model == "ltc":
        tl = LTC(F, AutoNCP(32, 10), return_sequences=True)
    elif model == "cfc":
        tl = CfC(F, 64, return_sequences=True)
    else:
        tl = CfC(F, AutoNCP(32, 10), return_sequences=True)
    net = keras.Sequential([keras.Input((None, F)), keras_from_torch(tl, return_sequences=True), keras.layers.Dense(1)])
    net.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="mean_squared_error")
    head = torch.nn.Linear(64 if model == "cfc" else 10, 1)
    opt = torch.optim.Adam([*tl.parameters(), *head.parameters()], lr=0.01)
    X, Y = torch.from_numpy(xs), torch.from_numpy(ys)

    def torch_epoch() -> None:
        for i in range(0, len(X), B):
            opt.zero_grad()
            y, _ = tl(X[i : i + B])
            ((head(y) - Y[i : i + B]) ** 2).mean().backward()
            opt.step()

    def keras_epoch() -> None:
        net.fit(xs, ys, epochs=1, batch_size=B, verbose=0, shuffle=False)

    keras_epoch(), torch_epoch()  # warm-up
    times: dict[str, list[float]] = {"keras-torch": [], "liquidflow.torch": []}
    for _ in range(epochs):
        for who, fn in (("keras-torch", keras_epoch), ("liquidflow.torch", torch_epoch)):
            t0 = time.perf_counter()
            fn()
            times[who].append((time.perf_counter() - t0) * 1e3 / (nseq // B))
    out = {who: statistics.median(v) for who, v in times.items()}
    out["ratio"] = statistics.median(a / b for a, b in zip(times["keras-torch"], times["liquidflow.torch"]))
    return out


def run_process(backend: str | None, model: str, what: str, threads: int) -> float:
    n = str(threads)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", THREADS=n, OMP_NUM_THREADS=n, MKL_NUM_THREADS=n,
               TF_NUM_INTRAOP_THREADS=n, TF_NUM_INTEROP_THREADS="1")  # fmt: skip
    env.pop("LIQUIDFLOW_SPEED_REF", None)
    if backend is None:
        env["LIQUIDFLOW_SPEED_REF"] = "torch"
    else:
        env["KERAS_BACKEND"] = backend
    proc = subprocess.run([sys.executable, __file__, model, what], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{backend or 'liquidflow.torch'} {model} {what} failed:\n{proc.stderr[-3000:]}")
    return float(json.loads(proc.stdout.strip().splitlines()[-1])["value"])


def table(backends: list[str], models: list[str], what: str, rounds: int, threads: int) -> str:
    """Interleaved rounds (every process once per round); each cell the median over rounds."""
    results: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for model in [*models, "lstm"]:
            for who in [None, *backends]:
                if who is None and model != "ltc" and model != "cfc" and model != "cfc-ncp":
                    continue
                key = (who or "liquidflow.torch", model)
                results.setdefault(key, []).append(run_process(who, model, what, threads))
                print(key, f"{results[key][-1]:.2f} ms", file=sys.stderr)
    med = {k: statistics.median(v) for k, v in results.items()}
    lines = [
        "| model | backend | liquidflow.keras | keras LSTM(64) | liquid / LSTM | liquidflow.torch | keras / torch |",
        "|---|---|---|---|---|---|---|",
    ]
    for model in models:
        ref = med.get(("liquidflow.torch", model))
        for backend in backends:
            ms, lstm = med[(backend, model)], med[(backend, "lstm")]
            torch_cols = f"{ref:.1f} | {ms / ref:.2f}x" if ref else "— | —"
            lines.append(f"| {model} | {backend} | {ms:.1f} | {lstm:.1f} | {ms / lstm:.2f}x | {torch_cols} |")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) == 3 and not sys.argv[1].startswith("-"):
        model, what = sys.argv[1], sys.argv[2]
        if model not in MODELS or what not in ("fwdbwd", "fit"):
            raise SystemExit(f"usage: keras_speed.py {{{','.join(MODELS)}}} {{fwdbwd,fit}}")
        one(model, what)
        return
    if len(sys.argv) >= 2 and sys.argv[1] == "torch-ab":  # torch-ab MODEL [EPOCHS]
        model = sys.argv[2] if len(sys.argv) > 2 else "ltc"
        epochs = int(sys.argv[3]) if len(sys.argv) > 3 else 5
        print(json.dumps({"model": model, **torch_ab(model, epochs, int(os.environ.get("NSEQ", "1024")))}))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "torch", "jax"])
    parser.add_argument("--models", nargs="+", default=["ltc", "cfc", "cfc-ncp"])
    parser.add_argument("--what", default="fit", choices=["fit", "fwdbwd"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    print(table(args.backends, args.models, args.what, args.rounds, args.threads))


if __name__ == "__main__":
    main()
