"""Speed of liquidflow.keras against liquidflow.torch: one measurement per process, one JSON line out.

Not a test (no wall-clock asserts anywhere): docs/keras.md, section "Speed", quotes its figures. A
Keras backend is fixed per process, so each measurement runs in its own process; compare versions by
running the processes interleaved (A, B, A, B, ...) on a quiet machine, one thread each:

    export OMP_NUM_THREADS=1 TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1
    KERAS_BACKEND=tensorflow python benchmarks/keras_speed.py ltc fwdbwd    # ms per forward+backward
    KERAS_BACKEND=torch python benchmarks/keras_speed.py cfc fit            # model.fit epochs per second
    LIQUIDFLOW_SPEED_REF=torch python benchmarks/keras_speed.py ltc fwdbwd  # liquidflow.torch, same task

Models: ``cfc`` = CfC(64) (backbone 128), ``ltc`` = LTC(AutoNCP(32, 10)); 20 inputs. ``fwdbwd``: a
batch of 32 sequences of 100 steps, the gradient of the summed output w.r.t. every weight (TensorFlow:
inside a ``tf.function``; torch: eager), best of REPS (default 5) after one warm-up. ``fit``: one
epoch of ``model.fit`` (256 sequences of 100 steps, batch 32, layer + Dense(1), Adam, MSE), best of
REPS // 2 (at least 2) after one warm-up epoch; ``JIT=0`` / ``JIT=1`` set ``jit_compile`` (default
"auto", which is XLA on TensorFlow). The torch reference runs the same epoch as a plain loop.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

B, T, F = 32, 100, 20


def best(fn: Callable[[], Any], n: int) -> float:
    fn()  # warm-up (and tracing)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def torch_reference(model: str, what: str, reps: int, x: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> float:
    import torch

    from liquidflow.torch import LTC, CfC
    from liquidflow.wirings import AutoNCP

    torch.manual_seed(0)
    layer = CfC(F, 64, return_sequences=True) if model == "cfc" else LTC(F, AutoNCP(32, 10), return_sequences=True)
    head = torch.nn.Linear(64 if model == "cfc" else 10, 1)
    if what == "fwdbwd":
        xt = torch.from_numpy(x)

        def step() -> None:
            y, _ = layer(xt)
            y.sum().backward()

        return best(step, reps) * 1e3
    opt = torch.optim.Adam([*layer.parameters(), *head.parameters()], lr=0.01)
    X, Y = torch.from_numpy(xs), torch.from_numpy(ys)

    def epoch() -> None:
        for i in range(0, len(X), B):
            opt.zero_grad()
            y, _ = layer(X[i : i + B])
            ((head(y) - Y[i : i + B]) ** 2).mean().backward()
            opt.step()

    return 1.0 / best(epoch, max(2, reps // 2))


def keras_run(model: str, what: str, reps: int, x: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> float:
    import keras
    import liquidflow.keras as lk
    from liquidflow.wirings import AutoNCP

    keras.utils.set_random_seed(0)
    layer = lk.CfC(64, return_sequences=True) if model == "cfc" else lk.LTC(AutoNCP(32, 10), return_sequences=True)
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

            return best(lambda: [g.numpy() for g in grads()], reps) * 1e3
        if backend == "torch":
            import torch

            xt = torch.from_numpy(x)
            return best(lambda: layer(xt).sum().backward(), reps) * 1e3
        raise SystemExit(f"fwdbwd is written for the tensorflow and torch backends; got {backend}")
    jit: Any = {"0": False, "1": True}.get(os.environ.get("JIT", ""), "auto")
    net = keras.Sequential([keras.Input((None, F)), layer, keras.layers.Dense(1)])
    net.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="mean_squared_error", jit_compile=jit)
    fit = lambda: net.fit(xs, ys, epochs=1, batch_size=B, verbose=0, shuffle=False)  # noqa: E731
    return 1.0 / best(fit, max(2, reps // 2))


def main() -> None:
    model, what = sys.argv[1], sys.argv[2]
    if model not in ("cfc", "ltc") or what not in ("fwdbwd", "fit"):
        raise SystemExit("usage: keras_speed.py {cfc,ltc} {fwdbwd,fit}")
    reps = int(os.environ.get("REPS", "5"))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(B, T, F)).astype("float32")
    xs = rng.normal(size=(256, T, F)).astype("float32")
    ys = np.tanh(xs[..., :1]).astype("float32")
    if os.environ.get("LIQUIDFLOW_SPEED_REF") == "torch":
        value, who = torch_reference(model, what, reps, x, xs, ys), "liquidflow.torch"
    else:
        value, who = keras_run(model, what, reps, x, xs, ys), f"keras-{os.environ.get('KERAS_BACKEND')}"
    unit = "ms" if what == "fwdbwd" else "epochs/s"
    print(json.dumps({"who": who, "model": model, "what": what, "value": value, "unit": unit}))


if __name__ == "__main__":
    main()
