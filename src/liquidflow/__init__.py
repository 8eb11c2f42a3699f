"""liquidflow: liquid neural networks (LTC, CfC, NCP wirings) for irregular time series.

``import liquidflow`` stays light (numpy only); the PyTorch layers live in ``liquidflow.torch``
and the Keras layers in ``liquidflow.keras``.
"""

from . import wirings as wirings
from .wirings import NCP as NCP
from .wirings import AutoNCP as AutoNCP
from .wirings import FullyConnected as FullyConnected
from .wirings import Random as Random
from .wirings import Wiring as Wiring

__version__ = "0.1.0"

__all__ = ["NCP", "AutoNCP", "FullyConnected", "Random", "Wiring", "__version__", "wirings"]
