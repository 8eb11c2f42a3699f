"""PyTorch front end: LTC and CfC cells and sequence layers (see docs/math.md)."""

from ._cells import CfCCell as CfCCell
from ._cells import LTCCell as LTCCell
from ._cells import MixedMemoryLSTMCell as MixedMemoryLSTMCell
from ._cells import WiredCfCCell as WiredCfCCell
from ._cells import inverse_softplus as inverse_softplus
from ._count import count_parameters as count_parameters
from ._dispatch import PATHS as PATHS
from ._dispatch import Choice as Choice
from ._dispatch import PathError as PathError
from ._dispatch import SlowPathWarning as SlowPathWarning
from ._dispatch import explain as explain
from ._dispatch import use_path as use_path
from ._ncps_state import ncps_state_dict_to_liquidflow as ncps_state_dict_to_liquidflow
from ._sequence import LTC as LTC
from ._sequence import CfC as CfC
from ._solvers import SOLVERS as SOLVERS
from ._solvers import ButcherTableau as ButcherTableau
from ._solvers import ExplicitRK as ExplicitRK
from ._solvers import SemiImplicitEuler as SemiImplicitEuler
from ._solvers import Solver as Solver
from ._solvers import get_solver as get_solver

__all__ = [
    "LTC",
    "PATHS",
    "SOLVERS",
    "ButcherTableau",
    "CfC",
    "CfCCell",
    "Choice",
    "ExplicitRK",
    "LTCCell",
    "MixedMemoryLSTMCell",
    "PathError",
    "SemiImplicitEuler",
    "SlowPathWarning",
    "Solver",
    "WiredCfCCell",
    "count_parameters",
    "explain",
    "get_solver",
    "inverse_softplus",
    "ncps_state_dict_to_liquidflow",
    "use_path",
]
