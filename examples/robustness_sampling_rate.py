"""Train at 10 Hz, evaluate at 1 Hz and 100 Hz: does the model integrate time or count steps?

A liquid network (LTC) and a GRU that sees dt as an input channel learn to tell damped oscillators
apart by frequency band from readings taken at ~10 Hz (irregular times). Then the same signals are
observed at ~1 Hz and ~100 Hz and both models are scored again, together with a few noise and
dropped-sample perturbations. Run: ``python examples/robustness_sampling_rate.py`` (about a minute
on a laptop CPU); the full experiment is ``liquidflow robustness`` (docs/robustness.md).
"""

from __future__ import annotations

import torch

from liquidflow.robustness import DropBursts, GaussianNoise, OscillatorTask, Resample, evaluate, train_classifier


def main() -> None:
    torch.set_num_threads(1)
    train = OscillatorTask.make(600, rate=10.0, duration=10.0, seed=0)
    test = OscillatorTask.make(300, rate=10.0, duration=10.0, seed=1)
    models = {
        "LTC": train_classifier("ltc", train.series, train.num_classes, units=16, epochs=20, ode_unfolds=3),
        "GRU": train_classifier("gru", train.series, train.num_classes, units=16, epochs=20),
    }
    perturbations = [Resample(0.1), Resample(10.0), GaussianNoise(0.3), DropBursts(0.3)]
    table = evaluate(models, test, perturbations, seed=0)
    print(table.to_markdown())
    print("plot:", table.plot("runs/robustness_example.png"))


if __name__ == "__main__":
    main()
