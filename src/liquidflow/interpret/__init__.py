"""Interpretability for liquid networks: how sensory inputs drive motor outputs.

* Wiring: :func:`plot_wiring` draws sensory -> inter -> command -> motor with trained synapse
  strengths and signs; :func:`wiring_graph` is the networkx graph behind it.
* Dynamics: :func:`trace` records neuron states, LTC time constants (:func:`ltc_time_constants`) and
  CfC gates over a sequence; :func:`plot_dynamics` draws them.
* Influence: :func:`integrated_gradients` (signed input x output matrix over a data set) and
  :func:`path_contributions` (sensory -> inter -> command -> motor paths of an NCP);
  :func:`plot_influence` draws the heatmap.
* :func:`inspect_model` writes all figures and one self-contained HTML report
  (``liquidflow inspect MODEL --out DIR`` on the command line).

Works on a bare ``liquidflow.torch`` LTC/CfC layer or a model holding one in ``.core``. Figures need
matplotlib and networkx (``pip install liquidflow[plot]``), imported only when a figure is drawn.
"""

from ._dynamics import cfc_internals as cfc_internals
from ._dynamics import ltc_conductances as ltc_conductances
from ._dynamics import ltc_time_constants as ltc_time_constants
from ._dynamics import step_probe as step_probe
from ._dynamics import timescale_shift as timescale_shift
from ._dynamics import trace as trace
from ._influence import EdgeGains as EdgeGains
from ._influence import Influence as Influence
from ._influence import PathContributions as PathContributions
from ._influence import edge_gains as edge_gains
from ._influence import integrated_gradients as integrated_gradients
from ._influence import path_contributions as path_contributions
from ._model import Trace as Trace
from ._model import get_core as get_core
from ._model import get_wiring as get_wiring
from ._plots import figure_to_png as figure_to_png
from ._plots import plot_dynamics as plot_dynamics
from ._plots import plot_influence as plot_influence
from ._plots import plot_wiring as plot_wiring
from ._plots import synapse_strengths as synapse_strengths
from ._plots import wiring_graph as wiring_graph
from ._report import Report as Report
from ._report import inspect_model as inspect_model
from ._report import summary as summary

__all__ = [
    "EdgeGains",
    "Influence",
    "PathContributions",
    "Report",
    "Trace",
    "cfc_internals",
    "edge_gains",
    "figure_to_png",
    "get_core",
    "get_wiring",
    "inspect_model",
    "integrated_gradients",
    "ltc_conductances",
    "ltc_time_constants",
    "path_contributions",
    "plot_dynamics",
    "plot_influence",
    "plot_wiring",
    "step_probe",
    "summary",
    "synapse_strengths",
    "timescale_shift",
    "trace",
    "wiring_graph",
]
