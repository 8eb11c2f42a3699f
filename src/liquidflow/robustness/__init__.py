"""Robustness: perturb an irregular dataset, evaluate models under each perturbation, tabulate and plot.

* perturbations (``apply(series, rng, source=None)``): :class:`GaussianNoise`, :class:`ImpulseNoise`,
  :class:`DropRandom`, :class:`DropBursts` (a dropped sample's dt folds into the next observed step),
  :class:`TimestampJitter`, :class:`Drift` (gain/offset), :class:`Resample` (observe the underlying
  continuous signal at another rate; needs a re-samplable source such as :class:`OscillatorTask`);
* :func:`evaluate` ``(models, dataset, perturbations) -> RobustnessTable`` (``to_markdown``,
  ``to_frame``, ``plot``); :func:`aggregate_seeds` ``({seed: table}) -> RobustnessTable`` of means
  with the spread over seeds (``std``, per-seed ``values``);
* :class:`OscillatorTask`: damped oscillators classified by frequency band, observable at any rate;
* :func:`train_classifier`: the small seeded training loop used by the experiment (docs/robustness.md);
* :func:`run_experiment`: the whole experiment, for one seed or (``seeds=``) several, over the
  model kinds of ``KIND_OPTIONS`` (each kind's layer options).
"""

from ._evaluate import RobustnessTable as RobustnessTable
from ._evaluate import aggregate_seeds as aggregate_seeds
from ._evaluate import evaluate as evaluate
from ._evaluate import score as score
from ._evaluate import train_classifier as train_classifier
from ._experiment import KIND_OPTIONS as KIND_OPTIONS
from ._experiment import run_experiment as run_experiment
from ._perturb import Clean as Clean
from ._perturb import Drift as Drift
from ._perturb import DropBursts as DropBursts
from ._perturb import DropRandom as DropRandom
from ._perturb import GaussianNoise as GaussianNoise
from ._perturb import ImpulseNoise as ImpulseNoise
from ._perturb import Perturbation as Perturbation
from ._perturb import Resample as Resample
from ._perturb import TimestampJitter as TimestampJitter
from ._perturb import default_perturbations as default_perturbations
from ._perturb import sweep as sweep
from ._task import OscillatorTask as OscillatorTask

__all__ = [
    "KIND_OPTIONS",
    "Clean",
    "Drift",
    "DropBursts",
    "DropRandom",
    "GaussianNoise",
    "ImpulseNoise",
    "OscillatorTask",
    "Perturbation",
    "Resample",
    "RobustnessTable",
    "TimestampJitter",
    "aggregate_seeds",
    "default_perturbations",
    "evaluate",
    "run_experiment",
    "score",
    "sweep",
    "train_classifier",
]
