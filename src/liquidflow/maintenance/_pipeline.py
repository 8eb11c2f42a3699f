"""Training and evaluation on a fleet's long-format readings: the liquid model and the baselines
(a tuned amplitude-threshold alarm, LSTM, GRU, Transformer) on the same machines, same metrics.

Models are :class:`liquidflow.training.RiskModel` s trained by :func:`liquidflow.training.train_loop`.
What this module adds is the maintenance recipe: truncated backpropagation through time (each
batch of machines is run chunk by chunk along time with the state carried, detached, between
chunks, so the model sees whole machine histories, as it will in the field, at the cost of short
gradients), a class-weighted risk loss plus a RUL loss, and the epoch chosen on validation AUPRC.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..training import LoopConfig, RiskExportView, RiskModel, risk_from_output, rul_from_output, train_loop
from ._metrics import alarm_frame, alarm_metrics, auprc, auroc
from ._models import KINDS
from ._simulate import FEATURES

State = Any  #: a risk model's recurrent state (a tensor, a tuple of tensors, or None)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

ENTITY = "machine_id"
TIME = "timestamp"
AMPLITUDE_FEATURES: tuple[str, ...] = ("rms",)


# ---------------------------------------------------------------------------- data
@dataclass
class Sequences:
    """A fleet as padded arrays, one row per machine, readings in time order."""

    ids: list[str]
    x: np.ndarray  #: (M, T, F) raw features
    dt_h: np.ndarray  #: (M, T) hours since the previous reading (first: first_dt_h; padding: 1)
    t_days: np.ndarray  #: (M, T) reading times in days (absolute: hours since the epoch / 24)
    lengths: np.ndarray  #: (M,)
    rows: list[np.ndarray]  #: per machine, the positions in the source DataFrame
    y: np.ndarray | None = None  #: (M, T) fails within H (0/1)
    rul: np.ndarray | None = None  #: (M, T) remaining useful life in days (inf: no failure)

    @property
    def mask(self) -> np.ndarray:
        return np.arange(self.x.shape[1])[None, :] < self.lengths[:, None]

    def flat(self, a: np.ndarray) -> np.ndarray:
        """Concatenate the valid steps of a (M, T) array machine by machine."""
        return np.concatenate([a[i, : self.lengths[i]] for i in range(len(self.ids))]) if self.ids else a.ravel()

    def subset(self, idx: Sequence[int]) -> Sequences:
        idx = list(idx)
        T = int(self.lengths[idx].max()) if idx else 1
        return Sequences(
            [self.ids[i] for i in idx],
            self.x[idx, :T],
            self.dt_h[idx, :T],
            self.t_days[idx, :T],
            self.lengths[idx],
            [self.rows[i] for i in idx],
            None if self.y is None else self.y[idx, :T],
            None if self.rul is None else self.rul[idx, :T],
        )


def time_in_hours(values: Any) -> np.ndarray:
    """Timestamps as float hours: datetimes since the Unix epoch, numbers taken as hours already."""
    import pandas as pd

    s = pd.Series(values)
    if pd.api.types.is_datetime64_any_dtype(s):
        return (s.astype("datetime64[ns]").astype("int64").to_numpy() / 3.6e12).astype(np.float64)
    if pd.api.types.is_numeric_dtype(s):
        return s.to_numpy(dtype=np.float64)
    try:
        return (pd.to_datetime(s).astype("datetime64[ns]").astype("int64").to_numpy() / 3.6e12).astype(np.float64)
    except (ValueError, TypeError) as e:
        raise ValueError(f"timestamps must be datetimes or numbers (hours); got values like {s.iloc[0]!r}") from e


def check_readings(df: pd.DataFrame, features: Sequence[str], entity: str = ENTITY, time_col: str = TIME) -> None:
    """Raise a ValueError naming what is missing or wrong in a readings table."""
    missing = [c for c in (entity, time_col, *features) if c not in df.columns]
    if missing:
        raise ValueError(f"readings are missing columns {missing}; got columns {list(df.columns)}")
    bad = [c for c in features if not np.issubdtype(df[c].dtype, np.number)]
    if bad:
        raise ValueError(f"feature columns must be numeric; not numeric: {bad}")
    nan = [c for c in features if df[c].isna().any()]
    if nan:
        raise ValueError(f"feature columns contain NaN: {nan} (fill or drop those readings first)")


def to_sequences(
    df: pd.DataFrame,
    features: Sequence[str] | None = None,
    *,
    entity: str = ENTITY,
    time_col: str = TIME,
    first_dt_h: float = 2.0,
    horizon_days: float | None = None,
) -> Sequences:
    """Group readings by machine and sort by time into padded arrays (with labels when present:
    ``rul_days``, and ``fails_within_h`` or, from ``rul_days``, ``rul_days <= horizon_days``)."""
    feats = list(FEATURES if features is None else features)
    check_readings(df, feats, entity, time_col)
    t_h = time_in_hours(df[time_col])
    ent = df[entity].astype(str).to_numpy()
    order = np.lexsort((t_h, ent))
    ids, starts = np.unique(ent[order], return_index=True)
    ends = np.r_[starts[1:], len(order)]
    lengths = ends - starts
    M, T, F = len(ids), int(lengths.max()) if len(ids) else 1, len(feats)
    X = df[feats].to_numpy(dtype=np.float32)
    has_rul = "rul_days" in df.columns
    has_y = "fails_within_h" in df.columns or (has_rul and horizon_days is not None)
    x = np.zeros((M, T, F), np.float32)
    dt = np.ones((M, T), np.float32)
    td = np.zeros((M, T), np.float64)
    y = np.zeros((M, T), np.float32) if has_y else None
    rul = np.full((M, T), np.inf) if has_rul else None
    rows = []
    rul_all = df["rul_days"].to_numpy(dtype=np.float64) if has_rul else None
    if "fails_within_h" in df.columns:
        y_all = df["fails_within_h"].to_numpy(dtype=np.float32)
    elif has_y:
        assert rul_all is not None and horizon_days is not None
        y_all = (rul_all <= horizon_days).astype(np.float32)
    for i, (a, b) in enumerate(zip(starts, ends)):
        r = order[a:b]
        th = t_h[r]
        d = np.diff(th)
        if np.any(d <= 0):
            j = int(np.argmax(d <= 0))
            raise ValueError(
                f"machine {ids[i]!r} has two readings at the same time ({df[time_col].iloc[r[j]]!r}); "
                "timestamps must be strictly increasing per machine"
            )
        n = b - a
        x[i, :n] = X[r]
        dt[i, 0] = first_dt_h
        dt[i, 1:n] = d
        td[i, :n] = th / 24.0
        if y is not None:
            y[i, :n] = y_all[r]
        if rul is not None and rul_all is not None:
            rul[i, :n] = rul_all[r]
        rows.append(r)
    return Sequences([str(v) for v in ids], x, dt, td, lengths.astype(np.int64), rows, y, rul)


def split_machines(ids: Sequence[str], seed: int = 0, val: float = 0.15, test: float = 0.35) -> dict[str, list[int]]:
    """A seeded split of machine indices into train / val / test (by machine, never by reading)."""
    n = len(ids)
    perm = np.random.default_rng(seed).permutation(n)
    n_test = max(1, round(test * n))
    n_val = max(1, round(val * n)) if n >= 3 else 0
    return {
        "test": sorted(perm[:n_test].tolist()),
        "val": sorted(perm[n_test : n_test + n_val].tolist()),
        "train": sorted(perm[n_test + n_val :].tolist()),
    }


# ---------------------------------------------------------------------------- training
@dataclass
class TrainConfig:
    """Hyper-parameters of :func:`train_model` (one set for every neural model)."""

    epochs: int = 25
    batch_size: int = 25
    chunk: int = 64  #: truncated-BPTT length (readings)
    lr: float = 1e-2
    units: int = 16  #: liquid neurons (AutoNCP)
    motors: int = 2  #: motor neurons of the NCP (projected to risk and RUL)
    hidden: int = 32  #: LSTM / GRU hidden size, Transformer width
    window: int = 48  #: Transformer attention window (readings)
    rul_weight: float = 0.5  #: weight of the RUL loss next to the classification loss
    rul_cap_days: float | None = None  #: RUL target cap (default 2 H)
    seed: int = 0
    threads: int | None = 1  #: torch threads while training (small recurrent models run fastest on one)
    liquid_options: dict[str, Any] = field(default_factory=dict)  #: extra CfC / LTC keywords (mixed_memory, ...)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainResult:
    model: RiskModel
    train_seconds: float
    best_epoch: int
    history: list[dict[str, float]] = field(default_factory=list)


def _log_features(x: np.ndarray, mask: np.ndarray) -> list[bool]:
    vals = x[mask]  # (N, F)
    return [bool(np.all(vals[:, j] > 0)) for j in range(vals.shape[1])]


def build_risk_model(
    kind: str, seqs: Sequences, features: Sequence[str], horizon_days: float, cfg: TrainConfig
) -> RiskModel:
    """A fresh model with its normalisation fitted on ``seqs`` (training machines)."""
    mask = seqs.mask
    valid_dt = seqs.dt_h[:, 1:][mask[:, 1:]]  # true intervals (the first step's dt is a placeholder)
    if valid_dt.size == 0:
        valid_dt = np.ones(1)
    model = RiskModel(
        kind,
        list(features),
        units=cfg.units,
        motors=cfg.motors,
        hidden=cfg.hidden,
        window=cfg.window,
        time_unit_h=float(np.median(valid_dt[valid_dt > 0])),
        horizon_days=horizon_days,
        rul_cap_days=cfg.rul_cap_days if cfg.rul_cap_days is not None else 2 * horizon_days,
        log_features=_log_features(seqs.x, mask),
        seed=cfg.seed,
        core_options=cfg.liquid_options if kind in ("cfc", "ltc") else None,
    )
    with torch.no_grad():
        z = model.transform_raw(torch.from_numpy(seqs.x[mask]))
        model.set_normalization(z.mean(0), z.std(0))
    return model


def _detach(state: State) -> State:
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


def model_dt(model: RiskModel, seqs: Sequences) -> torch.Tensor:
    """Elapsed hours per step as the model sees them: the first reading of a machine gets
    ``model.first_dt_h`` (as in :class:`Monitor`)."""
    dt = torch.from_numpy(seqs.dt_h).clone()
    dt[:, 0] = model.first_dt_h
    return dt


def predict_sequences(model: RiskModel, seqs: Sequences) -> tuple[np.ndarray, np.ndarray]:
    """Risk (probability of failing within H) and RUL (days) for every step, (M, T) each."""
    model.eval()
    with torch.no_grad():
        out, _ = model(torch.from_numpy(seqs.x), model_dt(model, seqs))
    return risk_from_output(out).numpy(), rul_from_output(out, model.rul_cap_days).numpy()


def _val_score(model: RiskModel, seqs: Sequences) -> float:
    assert seqs.y is not None
    risk, _ = predict_sequences(model, seqs)
    y = seqs.flat(seqs.y)
    if y.min() == y.max():
        return -float(np.mean(np.abs(seqs.flat(risk) - y)))
    return auprc(y, seqs.flat(risk))


def train_model(
    kind: str,
    train: Sequences,
    val: Sequences | None,
    features: Sequence[str],
    *,
    horizon_days: float,
    config: TrainConfig | None = None,
    progress: bool = False,
    label: str | None = None,
) -> TrainResult:
    """Train one model with truncated BPTT (:func:`liquidflow.training.train_loop`); keep the epoch
    with the best validation AUPRC (without ``val``: the lowest training loss)."""
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; allowed: {', '.join(KINDS)}")
    if train.y is None or train.rul is None:
        raise ValueError("training readings need targets: a rul_days column (and fails_within_h or a horizon)")
    cfg = config or TrainConfig()
    threads = torch.get_num_threads()
    if cfg.threads:  # set before the model is built, as the loop's own setting would come later
        torch.set_num_threads(cfg.threads)
    try:
        model = build_risk_model(kind, train, features, horizon_days, cfg)
        batches, loss_fn = _tbptt(model, train, cfg)
        has_val = val is not None and val.y is not None and len(val.ids) > 0
        res = train_loop(
            model,
            batches,
            loss_fn,
            LoopConfig(epochs=cfg.epochs, lr=cfg.lr, optimizer="adam", schedule="cosine", gradient_clip=1.0),
            validate=(lambda m: _val_score(m, val)) if has_val and val is not None else None,  # type: ignore[arg-type]
            progress=progress,
            label=f"train {label or kind}",
        )
    finally:
        torch.set_num_threads(threads)
    history = [
        {"epoch": r["epoch"], "loss": r["loss"], **({"val_auprc": r["val_score"]} if "val_score" in r else {})}
        for r in res.history
    ]
    return TrainResult(model, res.seconds, res.best_epoch, history)


def _tbptt(model: RiskModel, train: Sequences, cfg: TrainConfig) -> tuple[Any, Any]:
    """The maintenance recipe for :func:`train_loop`: an epoch's items are the time chunks of each
    batch of machines (in a seeded random order), and the loss of a chunk is the class-weighted
    BCE of "fails within H" plus ``rul_weight`` x a smooth-L1 loss on the capped RUL, over observed
    readings; the state is carried (detached) from one chunk to the next."""
    assert train.y is not None and train.rul is not None
    x = torch.from_numpy(train.x)
    dt = model_dt(model, train)
    y = torch.from_numpy(train.y)
    rul = torch.from_numpy(np.minimum(train.rul, model.rul_cap_days) / model.rul_cap_days).float()
    m = torch.from_numpy(train.mask)
    n_pos = float(y[m].sum())
    pos_weight = torch.tensor(min(20.0, max(1.0, (float(m.sum()) - n_pos) / max(n_pos, 1.0))))
    gen = torch.Generator().manual_seed(cfg.seed)
    M = train.x.shape[0]
    ctx = cfg.window - 1 if model.kind == "transformer" else 0
    carried: dict[str, State] = {"state": None}

    def batches(epoch: int) -> Any:
        perm = torch.randperm(M, generator=gen)
        for b in range(0, M, cfg.batch_size):
            idx = perm[b : b + cfg.batch_size]
            T_b = int(m[idx].sum(1).max())
            carried["state"] = None
            for c0 in range(0, T_b, cfg.chunk):
                yield idx, c0, min(c0 + cfg.chunk, T_b)

    def loss_fn(net: Any, item: Any) -> tuple[torch.Tensor, float]:
        idx, c0, c1 = item
        s0 = max(0, c0 - ctx)  # the transformer re-reads a window of context instead of a state
        out, state = net(x[idx, s0:c1], dt[idx, s0:c1], carried["state"] if ctx == 0 else None)
        carried["state"] = _detach(state)
        out = out[:, c0 - s0 :]
        mb, yb, rb = m[idx, c0:c1], y[idx, c0:c1], rul[idx, c0:c1]
        bce = torch.nn.functional.binary_cross_entropy_with_logits(
            out[..., 0], yb, pos_weight=pos_weight, reduction="none"
        )
        reg = torch.nn.functional.smooth_l1_loss(out[..., 1], rb, reduction="none", beta=0.1)
        w = mb.float()
        return ((bce + cfg.rul_weight * reg) * w).sum() / w.sum().clamp(min=1), float(w.sum())

    return batches, loss_fn


# ---------------------------------------------------------------------------- threshold baseline
def ema_per_machine(values: np.ndarray, lengths: np.ndarray, span: int) -> np.ndarray:
    """Exponential moving average with alpha = 2 / (span + 1) along each machine's readings (flat)."""
    if span <= 1:
        return np.asarray(values, dtype=np.float64).copy()
    a = 2.0 / (span + 1.0)
    out = np.empty(len(values), dtype=np.float64)
    pos = 0
    for n in lengths:
        acc = float(values[pos])
        for i in range(pos, pos + int(n)):
            acc = a * float(values[i]) + (1 - a) * acc
            out[i] = acc
        pos += int(n)
    return out


@dataclass
class AmplitudeAlarm:
    """Industry practice: an alarm on vibration amplitude (ISO 10816 style), tuned on training data.

    Tuning picks the amplitude feature (``rms`` or ``peak``) and an exponential smoothing span that
    give the longest mean lead time at the false-alarm budget on the training machines; the
    alarm threshold itself is then set at the budget wherever the alarm is evaluated, as for
    every other model.
    """

    feature: str = "rms"
    span: int = 1
    threshold: float = float("nan")
    features: tuple[str, ...] = AMPLITUDE_FEATURES  #: candidate amplitude columns
    feature_names: list[str] = field(default_factory=list)  #: the columns of the sequences it reads

    def score(self, seqs: Sequences) -> np.ndarray:
        """Smoothed amplitude per reading (flat, machine by machine)."""
        j = self._feature_index(seqs)
        return ema_per_machine(seqs.flat(seqs.x[:, :, j]), seqs.lengths, self.span)

    def _feature_index(self, seqs: Sequences) -> int:
        names = self.feature_names or list(FEATURES)
        if self.feature not in names:
            raise ValueError(f"the amplitude alarm needs a {self.feature!r} column; features are {names}")
        return names.index(self.feature)

    def fit(
        self, train: Sequences, feature_names: Sequence[str], budget: float, spans: Sequence[int] = (1, 4, 12)
    ) -> AmplitudeAlarm:
        if train.y is None or train.rul is None:
            raise ValueError("fitting the amplitude alarm needs targets (rul_days, fails_within_h)")
        self.feature_names = list(feature_names)
        frame = alarm_frame(
            np.repeat(np.arange(len(train.ids)), train.lengths),
            train.flat(train.t_days),
            train.flat(train.y),
            train.flat(train.rul),
        )
        best = (-math.inf, self.feature, self.span)
        for feat in self.features:
            if feat not in self.feature_names:
                continue
            for span in spans:
                self.feature, self.span = feat, int(span)
                lead = alarm_metrics(frame, self.score(train), budget)["lead_time_days"]
                lead = 0.0 if math.isnan(lead) else lead  # no failure among the training machines
                if lead > best[0]:
                    best = (lead, feat, int(span))
        if best[0] == -math.inf:
            raise ValueError(f"the amplitude alarm needs one of the columns {list(self.features)}")
        _, self.feature, self.span = best
        self.threshold = alarm_metrics(frame, self.score(train), budget)["threshold"]
        return self


# ---------------------------------------------------------------------------- evaluation
def step_latency_us(model: RiskModel, n: int = 64, repeats: int = 3) -> float:
    """Wall time of one streaming step (batch of one machine), in microseconds."""
    x = torch.randn(1, len(model.features)).abs() + 0.5
    dt = torch.full((1,), model.time_unit_h)
    model.eval()
    state: State = None
    for _ in range(5):
        _, state = model.step(x, dt, state)
    times = []
    for _ in range(repeats):
        state = None
        t0 = time.perf_counter()
        for _ in range(n):
            _, state = model.step(x, dt, state)
        times.append((time.perf_counter() - t0) / n * 1e6)
    return float(np.min(times))  # best of the repeats: the least disturbed by other work on the machine


def score_metrics(
    seqs: Sequences,
    risk_flat: np.ndarray,
    budget: float,
    rul_flat: np.ndarray | None = None,
    rul_cap_days: float | None = None,
) -> dict[str, float]:
    """AUROC, AUPRC, alarm metrics at the budget and (if given) the RUL error, for flat per-reading scores."""
    if seqs.y is None or seqs.rul is None:
        raise ValueError("evaluation needs targets: rul_days (and fails_within_h or a horizon)")
    y = seqs.flat(seqs.y)
    rul = seqs.flat(seqs.rul)
    frame = alarm_frame(np.repeat(np.arange(len(seqs.ids)), seqs.lengths), seqs.flat(seqs.t_days), y, rul)
    out: dict[str, float] = {"auroc": auroc(y, risk_flat), "auprc": auprc(y, risk_flat)}
    out.update(alarm_metrics(frame, risk_flat, budget))
    if rul_flat is not None and rul_cap_days is not None:
        near = rul <= rul_cap_days
        out["rul_mae_days"] = float(np.abs(rul_flat[near] - rul[near]).mean()) if near.any() else float("nan")
    else:
        out["rul_mae_days"] = float("nan")
    return out


def export_bytes(model: RiskModel) -> tuple[int, str]:
    """Bytes of the exported model and how they were measured: the ``const`` weight data of the C
    export (``liquidflow.export.to_c``) for liquid models when the exporter is present, else the
    float32 weights (parameters and input normalisation)."""
    if model.liquid:
        try:
            import tempfile

            from ..export import to_c

            with tempfile.TemporaryDirectory() as tmp:
                return int(to_c(RiskExportView(model), tmp, prefix="lfsize").weight_bytes), "C const weights"
        except (ImportError, TypeError, ValueError):
            pass
    return model.float32_bytes(), "float32 weights"
