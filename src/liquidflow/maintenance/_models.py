"""Risk models: a liquid network (CfC with an AutoNCP wiring, or LTC with an NCP) and the
baselines (LSTM, GRU, Transformer), all behind one interface that takes raw gateway features and
the elapsed time between readings.

Every model maps a reading sequence to two outputs per reading: the logit of "fails within H" and
the remaining useful life as a fraction of ``rul_cap_days``. Inputs are normalised inside the model
(log for positive features, then standardised), so a saved model takes raw readings.

How each model sees time:
- CfC / LTC: ``timespans = dt / time_unit_h`` (the liquid state evolves over the real gap);
- LSTM / GRU: ``log(dt / time_unit_h)`` as an extra input feature;
- Transformer: the same extra feature, plus an attention bias ``-slope_h * (t_query - t_key)``
  (ALiBi over elapsed time) inside a causal window of ``window`` readings.
"""

from __future__ import annotations

from typing import Any, Union

import torch
from torch import nn

Tensor = torch.Tensor
State = Union[Tensor, tuple[Tensor, ...], None]

KINDS: tuple[str, ...] = ("cfc", "ltc", "lstm", "gru", "transformer")
LIQUID_KINDS: tuple[str, ...] = ("cfc", "ltc")


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; allowed: {', '.join(KINDS)}")
    return kind


class RiskModel(nn.Module):
    """A sequence model from readings to (risk logit, normalised RUL) per reading.

    ``forward(x (B, T, F) raw features, dt_h (B, T) hours since the previous reading, state=None)``
    returns ``(out (B, T, 2), state)``; ``step(x (B, F), dt_h (B,), state)`` runs one reading.
    ``get_config()`` / ``RiskModel.from_config(cfg)`` round-trip (JSON-safe).
    """

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
        self.mean: Tensor
        self.std: Tensor
        self.log_mask: Tensor
        self.slopes: Tensor
        self.register_buffer("mean", torch.zeros(F))
        self.register_buffer("std", torch.ones(F))
        lf = [False] * F if log_features is None else [bool(v) for v in log_features]
        if len(lf) != F:
            raise ValueError(f"log_features must have one flag per feature ({F}); got {len(lf)}")
        self.register_buffer("log_mask", torch.tensor(lf, dtype=torch.bool))
        torch.manual_seed(self.seed)
        self.core: nn.Module
        self.head: nn.Module
        if kind == "cfc":
            from ..torch import CfC
            from ..wirings import AutoNCP

            self.core = CfC(F, AutoNCP(self.units, self.motors, seed=self.wiring_seed), proj_size=2)
            self.head = nn.Identity()
        elif kind == "ltc":
            from ..torch import LTC
            from ..wirings import AutoNCP

            self.core = LTC(F, AutoNCP(self.units, self.motors, seed=self.wiring_seed), proj_size=2, ode_unfolds=3)
            self.head = nn.Identity()
        elif kind in ("lstm", "gru"):
            rnn = nn.LSTM if kind == "lstm" else nn.GRU
            self.core = rnn(F + 1, self.hidden, batch_first=True)
            self.head = nn.Linear(self.hidden, 2)
        else:
            d = self.hidden
            if d % self.heads:
                raise ValueError(f"hidden ({d}) must be divisible by heads ({self.heads})")
            self.embed = nn.Linear(F + 1, d)
            self.core = nn.TransformerEncoderLayer(
                d, self.heads, dim_feedforward=2 * d, dropout=0.0, batch_first=True, norm_first=True
            )
            self.head = nn.Linear(d, 2)
            # ALiBi slopes per head over elapsed time (in time units), geometric as in Press et al. 2022
            self.register_buffer("slopes", torch.tensor([2.0 ** (-(i + 1)) for i in range(self.heads)]))

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
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> RiskModel:
        config = dict(config)
        kind = config.pop("kind")
        features = config.pop("features")
        return cls(kind, features, **config)

    def set_normalization(self, mean: Tensor, std: Tensor) -> None:
        self.mean.copy_(mean)
        self.std.copy_(torch.clamp(std, min=1e-6))

    # ------------------------------------------------------------------ inputs
    def normalize(self, x: Tensor) -> Tensor:
        """Raw features -> model inputs (log of positive features, then standardised)."""
        x = torch.where(self.log_mask, torch.log(torch.clamp(x, min=1e-9)), x)
        return (x - self.mean) / self.std

    def transform_raw(self, x: Tensor) -> Tensor:
        """The log step alone (for fitting the normalisation)."""
        return torch.where(self.log_mask, torch.log(torch.clamp(x, min=1e-9)), x)

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
        if self.kind in LIQUID_KINDS:
            out, h = self.core(z, hx=state, timespans=ts)
            return out, h
        zt = torch.cat([z, torch.log(ts).unsqueeze(-1)], dim=-1)
        if self.kind in ("lstm", "gru"):
            seq, h = self.core(zt, state)
            return self.head(seq), h
        return self._transformer(zt, ts, state)

    def _transformer(self, zt: Tensor, ts: Tensor, state: State) -> tuple[Tensor, State]:
        # state: (context inputs (B, W-1, F+1), their times (B, W-1), valid (B, W-1)) or None
        B, T, _ = zt.shape
        W = self.window
        t = torch.cumsum(ts, dim=1)  # (B, T) time of each reading, in time units
        if state is not None:
            assert isinstance(state, tuple)
            cz, ct, cv = state
            t = t + ct[:, -1:]  # continue the clock of the context
            zt_all = torch.cat([cz, zt], dim=1)
            t_all = torch.cat([ct, t], dim=1)
            valid = torch.cat([cv, torch.ones(B, T, dtype=torch.bool, device=zt.device)], dim=1)
        else:
            zt_all, t_all = zt, t
            valid = torch.ones(B, T, dtype=torch.bool, device=zt.device)
        S = zt_all.shape[1]
        q = torch.arange(S - T, S, device=zt.device)  # query positions
        k = torch.arange(S, device=zt.device)
        band = (k[None, :] <= q[:, None]) & (k[None, :] > q[:, None] - W)  # (T, S)
        allowed = band[None] & valid[:, None, :]  # (B, T, S)
        gap = t_all[:, S - T :, None] - t_all[:, None, :]  # (B, T, S) elapsed time query - key
        bias = -self.slopes[None, :, None, None] * gap.clamp(min=0)[:, None]  # (B, H, T, S)
        bias = bias.masked_fill(~allowed[:, None], float("-inf"))
        h = self.embed(zt_all)
        # the encoder layer attends from all S positions; we keep the last T (queries) only
        full_bias = torch.zeros(B, self.heads, S, S, dtype=h.dtype, device=h.device)
        full_bias[:, :, S - T :, :] = bias
        if S > T:  # context rows: let them attend to themselves only (their outputs are dropped)
            eye = torch.eye(S - T, S, dtype=torch.bool, device=h.device)
            full_bias[:, :, : S - T, :] = torch.where(eye, 0.0, float("-inf"))
        out = self.core(h, src_mask=full_bias.reshape(B * self.heads, S, S))[:, S - T :]
        keep = min(W - 1, S)
        new_state = (zt_all[:, S - keep :], t_all[:, S - keep :], valid[:, S - keep :])
        return self.head(out), new_state

    @torch.no_grad()
    def step(self, x: Tensor, dt_h: Tensor, state: State = None) -> tuple[Tensor, State]:
        """One reading per machine: x (B, F), dt_h (B,) -> (out (B, 2), new state)."""
        if self.kind in LIQUID_KINDS and not getattr(self.core, "mixed_memory", False):
            # the sequence layer's streaming step (one native C call where available)
            self._check(x, dt_h.reshape(-1))
            core: Any = self.core
            z = self.normalize(x)
            dt = (dt_h.reshape(-1) / self.time_unit_h).to(z.dtype)
            y, h = core.step(z, state if isinstance(state, Tensor) else None, dt)
            return y, h
        out, state = self.forward(x.unsqueeze(1), dt_h.reshape(-1, 1), state)
        return out[:, 0], state

    def parameter_count(self) -> int:
        return sum(int(p.numel()) for p in self.parameters() if p.requires_grad)

    def float32_bytes(self) -> int:
        """Bytes of the float32 weights a deployment needs: parameters plus normalisation buffers."""
        n = self.parameter_count() + 2 * len(self.features)
        return 4 * n


def risk_from_output(out: Tensor) -> Tensor:
    """Probability of failing within H from the model output (..., 2)."""
    return torch.sigmoid(out[..., 0])


def rul_from_output(out: Tensor, rul_cap_days: float) -> Tensor:
    """RUL in days (clipped to [0, cap]) from the model output (..., 2)."""
    return torch.clamp(out[..., 1], 0.0, 1.0) * rul_cap_days


def save_risk_model(model: RiskModel, path: str, extra: dict[str, Any] | None = None) -> None:
    """Save config + weights (+ JSON-safe ``extra``, e.g. the alarm threshold) to one file."""
    torch.save(
        {
            "format": "liquidflow.maintenance/1",
            "config": model.get_config(),
            "state_dict": model.state_dict(),
            "extra": extra or {},
        },
        path,
    )


def load_risk_model(path: str) -> tuple[RiskModel, dict[str, Any]]:
    """Load a model saved by :func:`save_risk_model`; returns (model in eval mode, extra)."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != "liquidflow.maintenance/1":
        raise ValueError(f"{path} is not a liquidflow maintenance model (saved by `liquidflow maintenance train`)")
    model = RiskModel.from_config(blob["config"])
    model.load_state_dict(blob["state_dict"])
    model.eval()
    return model, dict(blob.get("extra", {}))
