"""Train at 10 Hz, evaluate at 1 Hz and 100 Hz: does the model integrate time or count steps?

A liquid network (LTC) and a GRU that sees dt as an input channel learn to tell damped oscillators
apart by frequency band from readings taken at ~10 Hz (irregular times). Then the same signals are
observed at ~1 Hz and ~100 Hz and both models are scored again, together with a few noise and
dropped-sample perturbations. One run is one draw: the example repeats it for three seeds (new data,
weights, batch order and perturbation draws each time) and prints the mean ± standard deviation over
seeds, so a difference can be compared with the seed spread. Run:
``python examples/robustness_sampling_rate.py`` (about a minute on a laptop CPU); the full
experiment is ``liquidflow robustness --seeds 0,1,2,3,4`` (docs/robustness.md).
"""

from __future__ import annotations

import torch

from liquidflow.robustness import (
    DropBursts,
    GaussianNoise,
    OscillatorTask,
    Resample,
    RobustnessTable,
    aggregate_seeds,
    evaluate,
    train_classifier,
)


def main() -> None:
    torch.set_num_threads(1)
    perturbations = [Resample(0.1), Resample(10.0), GaussianNoise(0.3), DropBursts(0.3)]
    tables: dict[int, RobustnessTable] = {}
    for seed in (0, 1, 2):
        train = OscillatorTask.make(600, rate=10.0, duration=10.0, seed=seed)
        test = OscillatorTask.make(300, rate=10.0, duration=10.0, seed=seed + 1)
        models = {
            "LTC": train_classifier(
                "ltc", train.series, train.num_classes, units=16, epochs=20, seed=seed, ode_unfolds=3
            ),
            "GRU": train_classifier("gru", train.series, train.num_classes, units=16, epochs=20, seed=seed),
        }
        tables[seed] = evaluate(models, test, perturbations, seed=seed)
        clean = {m: tables[seed].value(m, "clean") for m in models}
        print(f"seed {seed}: clean accuracy LTC {clean['LTC']:.3f}, GRU {clean['GRU']:.3f}")
    table = aggregate_seeds(tables)  # value = mean over seeds, std = sample standard deviation
    print(table.to_markdown())
    print("plot (error bars: ± std over seeds):", table.plot("runs/robustness_example.png"))


if __name__ == "__main__":
    main()
