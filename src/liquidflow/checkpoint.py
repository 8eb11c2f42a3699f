"""Save and load liquidflow models as one safe, self-describing file.

A checkpoint is a single file written atomically (a temporary file in the same folder, then
``os.replace``), holding a plain dict of tensors, strings and numbers:

    {"format": "liquidflow-checkpoint", "version": 1,
     "class_name": "SequenceModel",          # a key of MODEL_CLASSES
     "config": "<JSON of model.get_config()>",
     "metadata": "<JSON of the user's metadata>",
     "state_dict": {name: tensor}}

It is read with ``torch.load(weights_only=True)``, which refuses anything but tensors and plain
containers, so loading a checkpoint never runs code from the file. The architecture is rebuilt from
the JSON config through a registry of known classes, then the weights are loaded strictly.

Files of the maintenance application's former format (``liquidflow.maintenance/1``, a plain
``torch.save`` of config + weights) are read too: converted on load to a ``RiskModel`` with the
same outputs, so every command takes them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ._files import atomic_path

FORMAT = "liquidflow-checkpoint"
VERSION = 1
#: the maintenance application's former plain ``torch.save`` files, read (converted) by ``load_model``
LEGACY_MAINTENANCE_FORMAT = "liquidflow.maintenance/1"

_EXTRA_CLASSES: dict[str, type[nn.Module]] = {}


def register_model_class(cls: type[nn.Module]) -> type[nn.Module]:
    """Make ``cls`` (with ``get_config()`` and ``from_config(cfg)``) loadable; usable as a decorator."""
    if not (hasattr(cls, "get_config") and hasattr(cls, "from_config")):
        raise TypeError(f"{cls.__name__} needs get_config() and a from_config(config) classmethod to be registered")
    _EXTRA_CLASSES[cls.__name__] = cls
    return cls


def model_classes() -> dict[str, type[nn.Module]]:
    """The registry: class name -> class, for every model a checkpoint may hold."""
    from .torch import LTC, CfC
    from .training import DtGRU, DtLSTM, DtTransformer, RiskModel, SequenceModel

    classes: dict[str, type[nn.Module]] = {
        "LTC": LTC,
        "CfC": CfC,
        "SequenceModel": SequenceModel,
        "DtLSTM": DtLSTM,
        "DtGRU": DtGRU,
        "DtTransformer": DtTransformer,
        "RiskModel": RiskModel,
    }
    classes.update(_EXTRA_CLASSES)
    return classes


def save_model(model: Any, path: str | os.PathLike[str], metadata: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (config + weights) and JSON ``metadata`` to ``path`` atomically; returns the path."""
    name = type(model).__name__
    classes = model_classes()
    if name not in classes or not hasattr(model, "get_config"):
        raise TypeError(f"cannot save a {name}: known model classes are {sorted(classes)} (see register_model_class)")
    try:
        config_json = json.dumps(model.get_config())
    except TypeError as e:
        raise TypeError(f"{name}.get_config() is not JSON-serialisable: {e}") from e
    try:
        metadata_json = json.dumps({} if metadata is None else metadata)
    except TypeError as e:
        raise TypeError(f"metadata must be JSON-serialisable (dict of str, numbers, lists): {e}") from e
    if metadata is not None and not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict or None; got {type(metadata).__name__}")
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "class_name": name,
        "config": config_json,
        "metadata": metadata_json,
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(payload, f)
    return path


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate the raw payload (no model is built); errors name the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, foreign pickle, text file ...
        raise ValueError(
            f"{str(path)!r} is not a readable liquidflow checkpoint (truncated, corrupted or a foreign/unsafe file): "
            f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        ) from e
    if isinstance(payload, dict) and payload.get("format") == LEGACY_MAINTENANCE_FORMAT:
        from .training import upgrade_legacy_payload

        return upgrade_legacy_payload(payload, repr(str(path)))
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} is not a liquidflow checkpoint (no {FORMAT!r} format tag)")
    version = payload.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise ValueError(f"{str(path)!r} has checkpoint format version {version!r}; this liquidflow reads <= {VERSION}")
    for key, kind in (("class_name", str), ("config", str), ("metadata", str), ("state_dict", dict)):
        if not isinstance(payload.get(key), kind):
            raise ValueError(f"{str(path)!r} is damaged: field {key!r} is missing or not a {kind.__name__}")
    try:
        payload["config"] = json.loads(payload["config"])
        payload["metadata"] = json.loads(payload["metadata"])
    except json.JSONDecodeError as e:
        raise ValueError(f"{str(path)!r} is damaged: its config/metadata is not valid JSON ({e})") from e
    return payload


def load_model(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Load a model saved by :func:`save_model`; returns ``(model in eval mode, metadata dict)``."""
    payload = read_checkpoint(path)
    classes = model_classes()
    name = payload["class_name"]
    if name not in classes:
        raise ValueError(f"{str(path)!r} holds a {name!r}, which is not a known model class {sorted(classes)}")
    try:
        model = classes[name].from_config(payload["config"])  # type: ignore[attr-defined]
    except (TypeError, ValueError, KeyError) as e:
        raise ValueError(f"{str(path)!r}: cannot rebuild {name} from its config: {e}") from e
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as e:
        raise ValueError(f"{str(path)!r}: weights do not match the {name} config: {e}") from e
    model.to(map_location)
    model.eval()
    return model, payload["metadata"]
