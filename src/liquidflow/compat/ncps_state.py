"""ncps.torch checkpoints in liquidflow layers: the conversion lives with the torch layers
(``liquidflow.torch.ncps_state_dict_to_liquidflow``, used by their ``load_state_dict``); this module
keeps the name the docs and earlier code use."""

from __future__ import annotations

from ..torch import ncps_state_dict_to_liquidflow as ncps_state_dict_to_liquidflow

__all__ = ["ncps_state_dict_to_liquidflow"]
