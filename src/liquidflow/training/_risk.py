"""Failure-risk models: a sequence model from raw readings and elapsed hours to (risk, RUL) per reading.

A :class:`RiskModel` is a registered model class of the training package (it saves and loads
through :mod:`liquidflow.checkpoint` like a :class:`SequenceModel`). Its core is one of the
library's layers: a liquid network (CfC with an AutoNCP wiring, or LTC with an NCP) or the
training package's baselines (:class:`DtLSTM`, :class:`DtGRU`, :class:`DtTransformer`).

Every model maps a reading sequence to two outputs per reading: the logit of "fails within H" and
the remaining useful life as a fraction of ``rul_cap_days``. Inputs are preprocessed inside the
model (log for positive features, then standardised with ``input_mean`` / ``input_std``), so a
saved model takes raw readings; elapsed time is scaled as ``timespans = dt_h / time_unit_h``.

How each model sees time:
- CfC / LTC: ``timespans`` (the liquid state evolves over the real gap);
- LSTM / GRU: ``log(timespans)`` as an extra input feature (``dt_input="log"``);
- Transformer: the same extra feature, plus an ALiBi attention bias over elapsed time inside a
  causal window of ``window`` readings (``time_encoding="alibi"``).
"""

from __future__ import annotations

from typing import Any, Union

import torch
from torch import nn

from ..torch import LTC, CfC, count_parameters
from ..wirings import AutoNCP
from ._baselines import DtGRU, DtLSTM, DtTransformer

Tensor = torch.Tensor
State = Union[Tensor, tuple[Tensor, ...], None]

RISK_KINDS: tuple[str, ...] = ("cfc", "ltc", "lstm", "gru", "transformer")
LIQUID_KINDS: tuple[str, ...] = ("cfc", "ltc")
LEGACY_FORMAT = "liquidflow.maintenance/1"  #: the plain torch.save format of liquidflow <= 0.x maintenance


def _check_kind(kind: str) -> str:
    if kind not in RISK_KINDS:
        raise ValueError(f"unknown model kind {kind!r}; allowed: {', '.join(RISK_KINDS)}")
    return kind


class RiskModel(nn.Module):
    """A sequence model from readings to (risk logit, normalised RUL) per reading.

    ``forward(x (B, T, F) raw features, dt_h (B, T) hours since the previous reading, state=None)``
    returns ``(out (B, T, 2), state)``; ``step(x (B, F), dt_h (B,), state)`` runs one reading.
    ``get_config()`` / ``RiskModel.from_config(cfg)`` round-trip (JSON-safe).
    """

    task = "failure_risk"  #: per-step (logit of failing within H, RUL / rul_cap_days)
    input_mean: Tensor
    input_std: Tensor
    log_mask: Tensor

    def __init__(
        self,
        kind: str,
        features: list[str],
        *,
        units: int = 16,
        motors: int = 2,
        hidden: int = 32,
        window: int = 48,
        heads: int = 2,
        time_unit_h: float = 2.0,
        first_dt_h: float | None = None,
        horizon_days: float = 7.0,
        rul_cap_days: float = 14.0,
        log_features: list[bool] | None = None,
        seed: int = 0,
        wiring_seed: int = 22222,
        core_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.kind = _check_kind(kind)
        if not features:
            raise ValueError("features must name at least one input column")
        self.features = list(features)
        F = len(self.features)
        self.units, self.hidden, self.window, self.heads = int(units), int(hidden), int(window), int(heads)
        self.motors = int(motors)  # motor neurons of the NCP, projected to the 2 outputs
        self.time_unit_h = float(time_unit_h)
        self.first_dt_h = float(first_dt_h) if first_dt_h is not None else float(time_unit_h)
        self.horizon_days = float(horizon_days)
        self.rul_cap_days = float(rul_cap_days)
        self.seed = int(seed)
        self.wiring_seed = int(wiring_seed)
        #: extra keywords for the liquid core (CfC / LTC), e.g. mixed_memory, mode, ode_unfolds
        self.core_options = dict(core_options or {})
        if self.core_options and kind not in ("cfc", "ltc"):
            raise ValueError(f"core_options apply to the liquid kinds (cfc, ltc) only; got kind {kind!r}")
        self.register_buffer("input_mean", torch.zeros(F))
        self.register_buffer("input_std", torch.ones(F))
        lf = [False] * F if log_features is None else [bool(v) for v in log_features]
        if len(lf) != F:
            raise ValueError(f"log_features must have one flag per feature ({F}); got {len(lf)}")
        self.register_buffer("log_mask", torch.tensor(lf, dtype=torch.bool))
        torch.manual_seed(self.seed)
        self.core: Any
        self.head: nn.Module | None
        if kind == "cfc":
            wiring = AutoNCP(self.units, self.motors, seed=self.wiring_seed)
            self.core = CfC(F, wiring, proj_size=2, **self.core_options)
            self.head = None
        elif kind == "ltc":
            wiring = AutoNCP(self.units, self.motors, seed=self.wiring_seed)
            self.core = LTC(F, wiring, proj_size=2, **{"ode_unfolds": 3, **self.core_options})
            self.head = None
        elif kind in ("lstm", "gru"):
            rnn = DtLSTM if kind == "lstm" else DtGRU
            self.core = rnn(F, self.hidden, dt_input="log")
            self.head = nn.Linear(self.hidden, 2)
        else:
            if self.hidden % self.heads:
                raise ValueError(f"hidden ({self.hidden}) must be divisible by heads ({self.heads})")
            self.core = DtTransformer(
                F,
                self.hidden,
                num_layers=1,
                num_heads=self.heads,
                dt_input="log",
                time_encoding="alibi",
                window=self.window,
                final_norm=False,
            )
            self.head = nn.Linear(self.hidden, 2)

    # ------------------------------------------------------------------ config
    def get_config(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "features": self.features,
            "units": self.units,
            "motors": self.motors,
            "hidden": self.hidden,
            "window": self.window,
            "heads": self.heads,
            "time_unit_h": self.time_unit_h,
            "first_dt_h": self.first_dt_h,
            "horizon_days": self.horizon_days,
            "rul_cap_days": self.rul_cap_days,
            "log_features": [bool(v) for v in self.log_mask.tolist()],
            "seed": self.seed,
            "wiring_seed": self.wiring_seed,
            "core_options": dict(self.core_options),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> RiskModel:
        config = dict(config)
        kind = config.pop("kind")
        features = config.pop("features")
        return cls(kind, features, **config)

    def set_normalization(self, mean: Tensor, std: Tensor) -> None:
        self.input_mean.copy_(mean)
        self.input_std.copy_(torch.clamp(std, min=1e-6))

    def preprocessing(self) -> dict[str, Any]:
        """What the model does to raw readings before its core, as JSON (checkpoint metadata, C gateways)."""
        return {
            "log_features": [f for f, v in zip(self.features, self.log_mask.tolist(), strict=True) if v],
            "input_mean": [float(v) for v in self.input_mean.tolist()],
            "input_std": [float(v) for v in self.input_std.tolist()],
            "normalize": "x' = (log(x) if the feature is in log_features else x - input_mean) / input_std",
            "time_unit_h": self.time_unit_h,
            "first_dt_h": self.first_dt_h,
            "timespans": "dt_h / time_unit_h (the first reading of a machine: first_dt_h / time_unit_h)",
        }

    # ------------------------------------------------------------------ inputs
    @property
    def input_size(self) -> int:
        return len(self.features)

    @property
    def output_size(self) -> int:
        return 2

    def transform_raw(self, x: Tensor) -> Tensor:
        """The log step alone (for fitting the normalisation, and the C gateway's inputs)."""
        return torch.where(self.log_mask, torch.log(torch.clamp(x, min=1e-9)), x)

    def normalize(self, x: Tensor) -> Tensor:
        """Raw features -> model inputs (log of positive features, then standardised)."""
        return (self.transform_raw(x) - self.input_mean) / self.input_std

    def _check(self, x: Tensor, dt_h: Tensor) -> None:
        if x.shape[-1] != len(self.features):
            raise ValueError(f"expected {len(self.features)} features {self.features}; got {x.shape[-1]}")
        if dt_h.shape != x.shape[:-1]:
            raise ValueError(f"dt_h must have shape {tuple(x.shape[:-1])}; got {tuple(dt_h.shape)}")
        if bool((dt_h <= 0).any()):
            raise ValueError(f"dt_h must be > 0 (hours since the previous reading); got min {float(dt_h.min())}")

    @property
    def liquid(self) -> bool:
        return self.kind in LIQUID_KINDS

    # ------------------------------------------------------------------ run
    def forward(self, x: Tensor, dt_h: Tensor, state: State = None) -> tuple[Tensor, State]:
        """x (B, T, F) raw, dt_h (B, T) -> (out (B, T, 2): logit, rul fraction; final state)."""
        self._check(x, dt_h)
        z = self.normalize(x)
        ts = dt_h / self.time_unit_h
        out, h = self.core(z, hx=state, timespans=ts)
        if self.head is not None:
            out = self.head(out)
        return out, h

    @torch.no_grad()
    def step(self, x: Tensor, dt_h: Tensor, state: State = None) -> tuple[Tensor, State]:
        """One reading per machine: x (B, F), dt_h (B,) -> (out (B, 2), new state), through the core's
        streaming ``step`` (one native C call for the liquid layers where available)."""
        if self.liquid and getattr(self.core, "mixed_memory", False):
            out, state = self.forward(x.unsqueeze(1), dt_h.reshape(-1, 1), state)
            return out[:, 0], state
        self._check(x, dt_h.reshape(-1))
        z = self.normalize(x)
        dt = (dt_h.reshape(-1) / self.time_unit_h).to(z.dtype)
        if self.liquid:
            return self.core.step(z, state if isinstance(state, Tensor) else None, dt)  # type: ignore[no-any-return]
        y, state = self.core.step(z, state, dt)
        assert self.head is not None
        return self.head(y[:, None])[:, 0], state  # the head on (B, 1, H) as in forward: the same numbers

    def parameter_count(self, effective: bool = False) -> int:
        """Trainable parameters; ``effective``: less the entries the NCP wiring fixes at zero
        (:func:`liquidflow.torch.count_parameters`)."""
        return count_parameters(self, effective=effective)

    def float32_bytes(self) -> int:
        """Bytes of the float32 weights a deployment needs: parameters plus normalisation buffers."""
        n = self.parameter_count() + 2 * len(self.features)
        return 4 * n


class RiskExportView(nn.Module):
    """The liquid core of a :class:`RiskModel` in the form ``liquidflow.export`` takes (``core``,
    ``head``, ``input_mean``, ``input_std``). Its inputs are the features after the model's log step
    (:meth:`RiskModel.transform_raw`: one line of C per feature in ``log_features`` on the gateway);
    its time input is ``dt_h / time_unit_h``. Outputs: (risk logit, RUL / rul_cap_days)."""

    def __init__(self, model: RiskModel) -> None:
        super().__init__()
        if not model.liquid:
            raise ValueError(
                f"only liquid risk models ({', '.join(LIQUID_KINDS)}) have a liquid core to export or inspect; "
                f"this one is {model.kind!r}"
            )
        self.core = model.core
        self.head = None
        self.input_mean = model.input_mean
        self.input_std = model.input_std

    def forward(self, x: Tensor, timespans: float | Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        """x (B, T, F): the log-transformed features -> (B, T, 2), as the exported C computes it."""
        out, _ = self.core((x - self.input_mean) / self.input_std, timespans=timespans, mask=mask)
        return out  # type: ignore[no-any-return]


def risk_from_output(out: Tensor) -> Tensor:
    """Probability of failing within H from the model output (..., 2)."""
    return torch.sigmoid(out[..., 0])


def rul_from_output(out: Tensor, rul_cap_days: float) -> Tensor:
    """RUL in days (clipped to [0, cap]) from the model output (..., 2)."""
    return torch.clamp(out[..., 1], 0.0, 1.0) * rul_cap_days


def risk_metadata(model: RiskModel, **extra: Any) -> dict[str, Any]:
    """The checkpoint metadata of a risk model: what a monitor or a gateway needs besides the weights
    (input names, horizon, preprocessing; the alarm threshold goes in ``extra``)."""
    return {
        "application": "maintenance",
        "input_names": list(model.features),
        "output_names": ["risk logit (fails within H)", "RUL / rul_cap_days"],
        "horizon_days": model.horizon_days,
        "rul_cap_days": model.rul_cap_days,
        "preprocessing": model.preprocessing(),
        **extra,
    }


def _legacy_state_dict(kind: str, sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename the parameters of a legacy maintenance file to the current RiskModel layout."""
    out: dict[str, Tensor] = {}
    for name, value in sd.items():
        if name in ("mean", "std"):
            name = "input_" + name
        elif name == "slopes":  # now a derived (non-persistent) buffer of the Transformer
            continue
        elif kind in ("lstm", "gru") and name.startswith("core."):
            name = "core.rnn." + name[len("core.") :]
        elif kind == "transformer" and name.startswith("embed."):
            name = "core." + name
        elif kind == "transformer" and name.startswith("core."):
            name = "core.encoder.layers.0." + name[len("core.") :]
        out[name] = value
    return out


def upgrade_legacy_payload(blob: dict[str, Any], where: str) -> dict[str, Any]:
    """A legacy ``liquidflow.maintenance/1`` file (a dict from ``torch.save``) as a checkpoint payload
    (``class_name``, ``config`` and ``metadata`` as dicts, ``state_dict``); ValueError if damaged."""
    config, sd, extra = blob.get("config"), blob.get("state_dict"), blob.get("extra", {})
    if not isinstance(config, dict) or not isinstance(sd, dict) or not isinstance(extra, dict):
        raise ValueError(f"{where} is a damaged maintenance model file ({LEGACY_FORMAT}): retrain it")
    kind = str(config.get("kind"))
    try:
        model = RiskModel.from_config(config)
        model.load_state_dict(_legacy_state_dict(kind, sd), strict=True)
    except (TypeError, ValueError, KeyError, RuntimeError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(
            f"{where} is a maintenance model file ({LEGACY_FORMAT}) that cannot be read: {first}; retrain it"
        ) from e
    return {
        "class_name": "RiskModel",
        "config": model.get_config(),
        "metadata": risk_metadata(model, **extra, converted_from=LEGACY_FORMAT),
        "state_dict": model.state_dict(),
    }
