"""Predictive maintenance for a fleet of machines: the flagship application of liquidflow.

* :func:`simulate` — a seeded fleet of rotating machines with hidden degradation (bearing outer
  race, imbalance), duty-cycled sensors and burst packet loss, as a long-format DataFrame
  (physics in docs/maintenance-physics.md);
* :func:`run_benchmark` — the liquid model (CfC + AutoNCP, or LTC + NCP) against an amplitude alarm,
  LSTM, GRU and Transformer on the same machines: AUROC / AUPRC, alarm lead time at a false-alarm
  budget, RUL error, size and step latency;
* :class:`Monitor` — streaming risk per machine, readings one at a time;
* :func:`check_c_export` — the liquid model exported to C and checked against Python;
  :func:`risk_figure_data`, :func:`plot_risk`, :func:`wiring_figure` — the figures of a benchmark
  (``NAMES``: the display name of each model);
* ``liquidflow maintenance train|evaluate|monitor|simulate`` and ``liquidflow demo`` on the command line.

Needs pandas (``pip install liquidflow[data]``); figures need matplotlib.
"""

from ._benchmark import NAMES as NAMES
from ._benchmark import Benchmark as Benchmark
from ._benchmark import run_benchmark as run_benchmark
from ._export import CCheck as CCheck
from ._export import ExportView as ExportView
from ._export import check_c_export as check_c_export
from ._figures import pick_machines as pick_machines
from ._figures import plot_risk as plot_risk
from ._figures import risk_figure_data as risk_figure_data
from ._figures import wiring_figure as wiring_figure
from ._metrics import alarm_frame as alarm_frame
from ._metrics import alarm_metrics as alarm_metrics
from ._metrics import alarm_threshold as alarm_threshold
from ._metrics import auprc as auprc
from ._metrics import auroc as auroc
from ._metrics import false_alarm_rate as false_alarm_rate
from ._metrics import lead_times as lead_times
from ._models import KINDS as KINDS
from ._models import RiskModel as RiskModel
from ._models import load_risk_model as load_risk_model
from ._models import save_risk_model as save_risk_model
from ._monitor import Monitor as Monitor
from ._monitor import Reading as Reading
from ._pipeline import AmplitudeAlarm as AmplitudeAlarm
from ._pipeline import Sequences as Sequences
from ._pipeline import TrainConfig as TrainConfig
from ._pipeline import TrainResult as TrainResult
from ._pipeline import predict_sequences as predict_sequences
from ._pipeline import score_metrics as score_metrics
from ._pipeline import split_machines as split_machines
from ._pipeline import to_sequences as to_sequences
from ._pipeline import train_model as train_model
from ._recipes import TUNED as TUNED_RECIPES
from ._recipes import tuned_recipes as tuned_recipes
from ._simulate import FEATURES as FEATURES
from ._simulate import Fleet as Fleet
from ._simulate import FleetConfig as FleetConfig
from ._simulate import SamplingConfig as SamplingConfig
from ._simulate import burst_features as burst_features
from ._simulate import simulate as simulate
from ._simulate import simulate_fleet as simulate_fleet
from ._simulate import synthesize_bursts as synthesize_bursts

__all__ = [
    "FEATURES",
    "KINDS",
    "NAMES",
    "TUNED_RECIPES",
    "AmplitudeAlarm",
    "Benchmark",
    "CCheck",
    "ExportView",
    "Fleet",
    "FleetConfig",
    "Monitor",
    "Reading",
    "RiskModel",
    "SamplingConfig",
    "Sequences",
    "TrainConfig",
    "TrainResult",
    "alarm_frame",
    "alarm_metrics",
    "alarm_threshold",
    "auprc",
    "auroc",
    "burst_features",
    "check_c_export",
    "false_alarm_rate",
    "lead_times",
    "load_risk_model",
    "pick_machines",
    "plot_risk",
    "predict_sequences",
    "risk_figure_data",
    "run_benchmark",
    "save_risk_model",
    "score_metrics",
    "simulate",
    "simulate_fleet",
    "split_machines",
    "synthesize_bursts",
    "to_sequences",
    "train_model",
    "tuned_recipes",
    "wiring_figure",
]
