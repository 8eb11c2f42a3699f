"""Keras quickstart: LTC and CfC as Keras 3 layers, with irregular time, padding, save/load and torch.

    KERAS_BACKEND=tensorflow .venv/bin/python examples/keras_quickstart.py     (or torch, or jax)

Fits a wired CfC (AutoNCP) to the phase velocity of sines observed at random times and padded to a
common length, saves it as a .keras file and loads it back, then copies the weights into the
PyTorch layer of the same configuration and checks that both give the same outputs.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import torch

import keras
from liquidflow.compat.keras_torch import torch_from_keras
from liquidflow.keras import LTC, CfC
from liquidflow.wirings import AutoNCP


def make_data(n: int, steps: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    dt = rng.uniform(0.02, 0.32, size=(n, steps)).astype("float32")  # irregular sampling, per sample
    t = np.cumsum(dt, axis=1)
    freq = rng.uniform(0.5, 1.5, size=(n, 1)).astype("float32")
    x = np.stack([np.sin(freq * t), np.cos(freq * t)], -1).astype("float32")  # (n, steps, 2)
    lengths = rng.integers(steps // 2, steps + 1, size=n)
    observed = np.arange(steps)[None, :] < lengths[:, None]
    x[~observed] = 0.0  # padding, masked by keras.layers.Masking below
    dt[~observed] = 0.0  # padded timespans may hold anything
    y = np.repeat(freq[:, None, :], steps, axis=1)  # target: the frequency, at every step
    return x, dt, y, observed


def build_model() -> keras.Model:
    x = keras.Input((None, 2), name="x")
    dt = keras.Input((None,), name="timespans")  # elapsed time before each step, per sample
    h = keras.layers.Masking(0.0)(x)
    h = CfC(AutoNCP(16, 4), return_sequences=True)([h, dt])
    y = keras.layers.Dense(1)(h)
    return keras.Model([x, dt], y)


def main() -> None:
    keras.utils.set_random_seed(0)
    print(f"Keras {keras.__version__}, backend {keras.backend.backend()}")
    x, dt, y, observed = make_data(256, 40)
    model = build_model()
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    before = model.evaluate([x, dt], y, verbose=0)
    model.fit([x, dt], y, epochs=int(os.environ.get("EPOCHS", "10")), batch_size=32, verbose=0)
    after = model.evaluate([x, dt], y, verbose=0)
    print(f"CfC(AutoNCP) mse: {before:.4f} -> {after:.4f}")

    # save / load: the layers and wirings are registered, no custom_objects needed
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        loaded = keras.models.load_model(path)
    same = np.allclose(
        np.asarray(loaded.predict([x[:8], dt[:8]], verbose=0)), model.predict([x[:8], dt[:8]], verbose=0)
    )
    print(f"reloaded model gives the same predictions: {same}")

    # the same layer in PyTorch, with the trained weights
    cfc = model.layers[3]
    torch_cfc = torch_from_keras(cfc)
    k_out = np.asarray(keras.ops.convert_to_numpy(cfc([x[:8], dt[:8]], mask=observed[:8])))
    t_out, _ = torch_cfc(
        torch.from_numpy(x[:8]), timespans=torch.from_numpy(dt[:8]), mask=torch.from_numpy(observed[:8])
    )
    print(f"keras vs torch, largest difference: {np.abs(k_out - t_out.detach().numpy()).max():.1e}")

    # LTC: input size inferred at build time, output = the motor neurons
    ltc = LTC(AutoNCP(20, 3), return_sequences=False, return_state=True)
    last, state = ltc([x[:4], dt[:4]])
    print(f"LTC last output {tuple(last.shape)}, state {tuple(state.shape)}")


if __name__ == "__main__":
    main()
