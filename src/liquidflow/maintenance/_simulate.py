"""A seeded simulator of a fleet of rotating machines watched by duty-cycled vibration sensors.

The model (equations and parameter values) is documented in docs/maintenance-physics.md; the
names below follow that page. In short, for each machine:

- operating condition: a Markov jump process over speed regimes, with a load that wanders;
- degradation: a hidden severity ``s(t)`` in [0, 1], zero until a random onset, then a gamma
  process whose mean grows like ``((t - t0) / D) ** beta`` (monotone, accelerating); the machine
  fails when ``s`` reaches 1 and its series ends there;
- faults: bearing outer race (impulses at the ball-pass frequency exciting a structural resonance)
  or imbalance (a 1x running-speed component growing with speed squared);
- sensor: a vibration burst synthesised in the frequency domain at each wake-up; the gateway
  computes RMS, peak, crest factor, kurtosis, the 1x amplitude, the envelope energy at BPFO
  harmonics and the shift of the dominant resonance frequency, plus temperature and the condition;
- sampling: a nominal wake-up period with jitter, occasional long sleeps, and burst packet loss
  (a Gilbert-Elliott two-state channel).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

#: gateway features, in the order of the DataFrame columns
FEATURES: tuple[str, ...] = (
    "rms",
    "peak",
    "crest_factor",
    "kurtosis",
    "amp_1x",
    "env_bpfo",
    "freq_shift",
    "temperature",
    "speed_rpm",
    "load",
)
#: hidden ground truth columns (not features: a real gateway cannot see them)
HIDDEN: tuple[str, ...] = ("fault_type", "severity")
TARGETS: tuple[str, ...] = ("rul_days", "fails_within_h")
FAULT_TYPES: tuple[str, ...] = ("none", "bearing", "imbalance")


@dataclass
class SamplingConfig:
    """How the sensors report (times in hours)."""

    wake_period_h: float = 3.0  #: nominal time between wake-ups
    jitter: float = 0.3  #: wake-up period is multiplied by U(1 - jitter, 1 + jitter)
    sleep_prob: float = 0.03  #: chance that a wake-up is followed by a long sleep
    sleep_mean_h: float = 12.0  #: mean of the (exponential) extra sleep
    loss_good: float = 0.02  #: packet loss probability in the good channel state
    loss_bad: float = 0.7  #: packet loss probability in the bad channel state
    p_good_to_bad: float = 0.03  #: per-packet transition probability good -> bad
    p_bad_to_good: float = 0.3  #: per-packet transition probability bad -> good

    def mean_interval_h(self) -> float:
        """Expected time between wake-ups (before packet loss)."""
        return self.wake_period_h + self.sleep_prob * self.sleep_mean_h

    def loss_rate(self) -> float:
        """Stationary packet loss rate of the Gilbert-Elliott channel."""
        pi_bad = self.p_good_to_bad / (self.p_good_to_bad + self.p_bad_to_good)
        return pi_bad * self.loss_bad + (1.0 - pi_bad) * self.loss_good


@dataclass
class FleetConfig:
    """Everything the simulator draws from; see docs/maintenance-physics.md for each symbol."""

    n_machines: int = 60
    days: float = 60.0
    horizon_days: float = 14.0  #: H in "fails within H"
    fault_prob: float = 0.6  #: share of machines that develop a fault during the run
    bearing_share: float = 0.6  #: share of faults that are bearing outer race (the rest: imbalance)
    onset_days: tuple[float, float] = (0.0, 40.0)  #: uniform range of the onset t0
    growth_days: tuple[float, float] = (10.0, 40.0)  #: uniform range of D (onset to mean failure)
    growth_exponent: tuple[float, float] = (2.0, 3.5)  #: uniform range of beta
    gamma_shape: float = 200.0  #: concentration of the gamma process (higher: less random)
    speeds_rpm: tuple[float, ...] = (1200.0, 1500.0, 1800.0)  #: operating speed regimes
    regime_dwell_h: float = 10.0  #: mean dwell time in a regime
    fs_hz: float = 10240.0  #: burst sampling rate
    burst_len: int = 2048  #: burst length in samples
    resonance_hz: float = 3000.0  #: structural resonance f_n0
    resonance_damping: float = 0.05  #: damping ratio zeta of the resonance
    ball_count: int = 9  #: rolling elements n_b
    ball_ratio: float = 0.2  #: d / D (ball over pitch diameter)
    contact_angle_deg: float = 0.0
    impact_gain: float = 2.5  #: height of one bearing impact at severity 1 (before the resonance)
    machine_spread: float = 0.4  #: sigma of the log-normal per-machine vibration gain
    resonance_spread: float = 0.02  #: relative sigma of the per-machine resonance frequency
    feature_noise: float = 0.02  #: relative multiplicative noise on every computed feature
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    seed: int = 0

    def bpfo_factor(self) -> float:
        """BPFO / f_r = n_b / 2 * (1 - d/D cos(theta))."""
        return self.ball_count / 2 * (1 - self.ball_ratio * math.cos(math.radians(self.contact_angle_deg)))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FleetConfig:
        d = dict(d)
        s = d.pop("sampling", {})
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown FleetConfig fields {sorted(unknown)}; allowed: {sorted(known)}")
        for k, v in d.items():
            if isinstance(v, list):
                d[k] = tuple(v)
        return cls(sampling=SamplingConfig(**s), **d)


def _check_config(cfg: FleetConfig) -> None:
    def pos(name: str, v: float) -> None:
        if not (isinstance(v, (int, float)) and v > 0):
            raise ValueError(f"{name} must be > 0; got {v!r}")

    if isinstance(cfg.n_machines, bool) or not isinstance(cfg.n_machines, int) or cfg.n_machines < 1:
        raise ValueError(f"n_machines must be an integer >= 1; got {cfg.n_machines!r}")
    pos("days", cfg.days)
    pos("horizon_days", cfg.horizon_days)
    for name in ("fault_prob", "bearing_share"):
        v = getattr(cfg, name)
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"{name} must be in [0, 1]; got {v!r}")
    for name in ("onset_days", "growth_days", "growth_exponent"):
        lo, hi = getattr(cfg, name)
        if not 0 <= lo <= hi:
            raise ValueError(f"{name} must be a range (lo, hi) with 0 <= lo <= hi; got {(lo, hi)!r}")
    if cfg.growth_days[0] <= 0 or cfg.growth_exponent[0] < 1:
        raise ValueError("growth_days must be > 0 and growth_exponent >= 1 (accelerating growth)")
    if cfg.burst_len < 256 or cfg.burst_len & (cfg.burst_len - 1):
        raise ValueError(f"burst_len must be a power of two >= 256; got {cfg.burst_len}")
    if cfg.resonance_hz >= cfg.fs_hz / 2:
        raise ValueError(f"resonance_hz must be below fs_hz / 2 = {cfg.fs_hz / 2}; got {cfg.resonance_hz}")
    s = cfg.sampling
    pos("sampling.wake_period_h", s.wake_period_h)
    pos("sampling.sleep_mean_h", s.sleep_mean_h)
    if not 0 <= s.jitter < 1:
        raise ValueError(f"sampling.jitter must be in [0, 1); got {s.jitter}")
    for name in ("sleep_prob", "loss_good", "loss_bad", "p_good_to_bad", "p_bad_to_good"):
        v = getattr(s, name)
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"sampling.{name} must be a probability in [0, 1]; got {v!r}")
    if s.p_good_to_bad + s.p_bad_to_good <= 0:
        raise ValueError("sampling.p_good_to_bad + p_bad_to_good must be > 0")


# ---------------------------------------------------------------------------- hidden processes
def _degradation(rng: np.random.Generator, cfg: FleetConfig, grid_h: np.ndarray) -> tuple[np.ndarray, float, str]:
    """Severity on an hourly grid (monotone gamma process), failure time (hours, inf if none), fault type."""
    if rng.random() >= cfg.fault_prob:
        return np.zeros_like(grid_h), math.inf, "none"
    kind = "bearing" if rng.random() < cfg.bearing_share else "imbalance"
    t0 = rng.uniform(*cfg.onset_days) * 24.0
    dur = rng.uniform(*cfg.growth_days) * 24.0
    beta = rng.uniform(*cfg.growth_exponent)
    mean = np.clip((grid_h - t0) / dur, 0.0, None) ** beta  # mean severity, accelerating after onset
    dmean = np.diff(mean, prepend=0.0)
    a = cfg.gamma_shape
    inc = np.where(dmean > 0, rng.gamma(np.maximum(a * dmean, 1e-12), 1.0 / a), 0.0)
    s = np.cumsum(inc)
    hit = np.nonzero(s >= 1.0)[0]
    if len(hit) == 0:
        return s, math.inf, kind
    i = hit[0]
    # interpolate the crossing inside the grid interval
    s_prev = s[i - 1] if i > 0 else 0.0
    frac = (1.0 - s_prev) / max(s[i] - s_prev, 1e-12)
    t_fail = grid_h[i - 1] + frac * (grid_h[i] - grid_h[i - 1]) if i > 0 else grid_h[0]
    return np.minimum(s, 1.0), float(t_fail), kind


def _wake_times(rng: np.random.Generator, s: SamplingConfig, t_end_h: float) -> np.ndarray:
    """Wake-up times in hours: jittered period plus occasional long sleeps."""
    n = int(t_end_h / (s.wake_period_h * (1 - s.jitter)) + 16)
    period = s.wake_period_h * rng.uniform(1 - s.jitter, 1 + s.jitter, n)
    sleep = np.where(rng.random(n) < s.sleep_prob, rng.exponential(s.sleep_mean_h, n), 0.0)
    t = rng.uniform(0, s.wake_period_h) + np.cumsum(period + sleep) - period[0]
    return t[t < t_end_h]


def _delivered(rng: np.random.Generator, s: SamplingConfig, n: int) -> np.ndarray:
    """Gilbert-Elliott burst loss: True where the packet arrives."""
    pi_bad = s.p_good_to_bad / (s.p_good_to_bad + s.p_bad_to_good)
    bad = rng.random() < pi_bad
    u_state = rng.random(n)
    u_loss = rng.random(n)
    ok = np.empty(n, dtype=bool)
    for i in range(n):
        ok[i] = u_loss[i] >= (s.loss_bad if bad else s.loss_good)
        bad = (u_state[i] >= s.p_bad_to_good) if bad else (u_state[i] < s.p_good_to_bad)
    return ok


def _regimes(rng: np.random.Generator, cfg: FleetConfig, t_h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Speed (rpm) and load (0..1) at times t_h: speed regimes switch as a Markov jump process,
    load follows a mean-reverting walk around a regime-specific level."""
    t_end = float(t_h[-1]) if len(t_h) else 0.0
    switches = [0.0]
    while switches[-1] <= t_end:
        switches.append(switches[-1] + rng.exponential(cfg.regime_dwell_h))
    k = len(switches)
    speeds = np.asarray(cfg.speeds_rpm)[rng.integers(0, len(cfg.speeds_rpm), k)]
    load_level = rng.uniform(0.3, 1.0, k)
    idx = np.searchsorted(np.asarray(switches), t_h, side="right") - 1
    speed = speeds[idx] * (1 + 0.01 * rng.standard_normal(len(t_h)))
    load = np.clip(load_level[idx] + 0.05 * rng.standard_normal(len(t_h)), 0.05, 1.0)
    return speed, load


# ---------------------------------------------------------------------------- vibration bursts
def synthesize_bursts(
    cfg: FleetConfig,
    rng: np.random.Generator,
    speed_rpm: np.ndarray,
    load: np.ndarray,
    severity: np.ndarray,
    fault: np.ndarray,
    gain: float = 1.0,
    fn_scale: float = 1.0,
) -> np.ndarray:
    """Acceleration bursts (g), shape (n, burst_len), for readings with the given state.

    ``gain`` (the machine's mounting / sensor transmissibility) scales the whole burst and
    ``fn_scale`` the machine's healthy resonance frequency.

    x(t) = A1 sin(2 pi f_r t + p1) + A2 sin(4 pi f_r t + p2) + IFFT[H(f) (N(f) + I(f))]
    where H is the structural resonance (f_n, zeta), N broadband excitation and I the train of
    bearing impacts at BPFO (docs/maintenance-physics.md).
    """
    n = len(speed_rpm)
    L, fs = cfg.burst_len, cfg.fs_hz
    t = (np.arange(L) / fs).astype(np.float32)
    f = np.fft.rfftfreq(L, 1 / fs)
    fr = speed_rpm / 60.0  # (n,)
    rel = (fr / 25.0) ** 2  # centrifugal forces scale with speed squared (25 Hz = 1500 rpm)
    is_bear = fault == "bearing"
    is_imb = fault == "imbalance"
    # shaft components: residual imbalance + fault-driven imbalance; a small 2x (misalignment)
    a1 = rel * (0.10 + 0.9 * severity * is_imb) * (0.9 + 0.2 * load)
    a2 = rel * 0.04 * (0.8 + 0.4 * load)
    p1 = rng.uniform(0, 2 * np.pi, n)
    p2 = rng.uniform(0, 2 * np.pi, n)
    w = (2 * np.pi * fr[:, None]).astype(np.float32)
    x = a1[:, None].astype(np.float32) * np.sin(w * t + p1[:, None].astype(np.float32))
    x += a2[:, None].astype(np.float32) * np.sin(2 * w * t + p2[:, None].astype(np.float32))
    # structural resonance: stiffness loss lowers f_n (both faults loosen the mount a little)
    kappa = np.where(is_bear, 0.06, np.where(is_imb, 0.03, 0.0))
    fn = cfg.resonance_hz * fn_scale * np.sqrt(1.0 - kappa * severity)  # (n,)
    r = f[None, :] / fn[:, None]
    z = cfg.resonance_damping
    H = (1.0 / (1.0 - r**2 + 2j * z * r)).astype(np.complex64)  # (n, F) receptance-like gain, 1 at DC
    # broadband excitation (flow, friction): white noise scaled by load
    sigma_n = 0.004 * (0.5 + load)
    N = np.empty((n, len(f)), dtype=np.complex64)
    N.real = rng.standard_normal((n, len(f)), dtype=np.float32)
    N.imag = rng.standard_normal((n, len(f)), dtype=np.float32)
    N *= (sigma_n * math.sqrt(L / 2)).astype(np.float32)[:, None]
    # bearing impacts: a train at BPFO with timing slip, amplitude growing with severity
    bpfo = cfg.bpfo_factor() * fr
    k_max = math.ceil(L / fs * float(bpfo.max())) + 1
    k = np.arange(k_max)
    tk = (rng.uniform(0, 1, n)[:, None] + k[None, :]) / bpfo[:, None]
    tk += 0.01 / bpfo[:, None] * rng.standard_normal((n, k_max))  # 1% slip
    ak = (severity**1.5 * is_bear * (0.6 + 0.8 * load))[:, None] * rng.uniform(0.7, 1.3, (n, k_max))
    idx = np.rint(tk * fs).astype(np.int64)
    inside = (idx >= 0) & (idx < L)
    impulses = np.zeros((n, L), dtype=np.float32)
    rows = np.broadcast_to(np.arange(n)[:, None], idx.shape)
    np.add.at(impulses, (rows[inside], idx[inside]), ak[inside] * cfg.impact_gain)
    I = np.fft.rfft(impulses, axis=1)
    x += np.fft.irfft(H * (N + I), n=L, axis=1).astype(np.float32)
    return x * np.float32(gain)


def _bins_around(freq_hz: np.ndarray, df: float, n_bins: int, width: int = 2) -> np.ndarray:
    """Indices (n, 2 * width + 1) of the spectrum bins within +-width bins of freq_hz (clipped)."""
    centre = np.rint(freq_hz / df).astype(np.int64)
    return np.clip(centre[:, None] + np.arange(-width, width + 1)[None, :], 0, n_bins - 1)


def burst_features(cfg: FleetConfig, x: np.ndarray, speed_rpm: np.ndarray) -> dict[str, np.ndarray]:
    """What a gateway computes from bursts x (n, L): time-domain statistics, 1x amplitude,
    envelope energy at BPFO harmonics and the dominant resonance frequency shift."""
    L, fs = x.shape[1], cfg.fs_hz
    mean = x.mean(axis=1, keepdims=True, dtype=np.float64)
    xc = (x - mean).astype(np.float32)
    xc2 = xc * xc
    var = xc2.mean(axis=1, dtype=np.float64)
    rms = np.sqrt(var + mean[:, 0] ** 2)
    peak = np.abs(x).max(axis=1).astype(np.float64)
    kurt = (xc2 * xc2).mean(axis=1, dtype=np.float64) / np.maximum(var, 1e-30) ** 2
    df = fs / L
    f = np.fft.rfftfreq(L, 1 / fs)
    win = np.hanning(L).astype(np.float32)
    X = np.fft.rfft(xc * win, axis=1)
    mag = np.abs(X) * (2 / win.sum())  # single-sided amplitude spectrum
    rows = np.arange(len(x))[:, None]
    fr = speed_rpm / 60.0
    # 1x amplitude: the largest bin within +-2 bins of the running speed
    amp_1x = mag[rows, _bins_around(fr, df, len(f))].max(axis=1)
    # envelope analysis (zoom): keep the resonance band of the unwindowed spectrum, shift it to
    # baseband and invert at a decimated rate; |analytic signal| is the envelope
    lo, hi = int(0.6 * cfg.resonance_hz / df), int(1.2 * cfg.resonance_hz / df)
    n_env = 1 << math.ceil(math.log2(hi - lo))
    Xb = np.fft.rfft(xc, axis=1)[:, lo:hi]
    env = np.abs(np.fft.ifft(Xb, n=n_env, axis=1))
    env -= env.mean(axis=1, keepdims=True)
    win_e = np.hanning(n_env)
    E = np.abs(np.fft.rfft(env * win_e, axis=1)) * (2 / win_e.sum())  # bin width: df again
    bpfo = cfg.bpfo_factor() * fr
    env_bpfo = np.zeros(len(x))
    for h in (1, 2, 3):
        env_bpfo += (E[rows, _bins_around(h * bpfo, df, E.shape[1])] ** 2).sum(axis=1)
    env_bpfo = np.sqrt(env_bpfo)
    # dominant resonance frequency: power-weighted centroid inside the resonance band, relative to
    # the centroid of the healthy resonance |H0(f)|^2 over the same band
    b0, b1 = int(0.8 * cfg.resonance_hz / df), int(1.2 * cfg.resonance_hz / df) + 1
    p = mag[:, b0:b1] ** 2
    fb = f[b0:b1]
    centroid = (p @ fb) / np.maximum(p.sum(axis=1), 1e-30)
    r0 = fb / cfg.resonance_hz
    h0 = 1.0 / np.abs(1.0 - r0**2 + 2j * cfg.resonance_damping * r0) ** 2
    f_ref = float((h0 * fb).sum() / h0.sum())
    return {
        "rms": rms,
        "peak": peak,
        "crest_factor": peak / np.maximum(rms, 1e-12),
        "kurtosis": kurt,
        "amp_1x": amp_1x,
        "env_bpfo": env_bpfo,
        "freq_shift": centroid - f_ref,
    }


# ---------------------------------------------------------------------------- the fleet
@dataclass
class Fleet:
    """Result of :func:`simulate_fleet`: readings, per-machine truth and (optionally) raw bursts."""

    readings: pd.DataFrame
    machines: pd.DataFrame
    config: FleetConfig
    bursts: np.ndarray | None = None


def simulate_fleet(config: FleetConfig | None = None, *, return_bursts: bool = False, **overrides: Any) -> Fleet:
    """Simulate a fleet; see :func:`simulate`. Returns a :class:`Fleet` (readings, machines, bursts)."""
    import pandas as pd

    cfg = config if config is not None else FleetConfig()
    if overrides:
        d = cfg.to_dict()
        samp = dict(d["sampling"])
        for k, v in overrides.items():
            if k in samp:
                samp[k] = v
            else:
                d[k] = v
        d["sampling"] = samp
        cfg = FleetConfig.from_dict(d)
    _check_config(cfg)
    t_end = cfg.days * 24.0
    grid = np.arange(0.0, t_end + 24.0 * 60, 1.0)  # hourly, beyond the run so RUL is known
    H = cfg.horizon_days
    start = np.datetime64("2026-01-01T00:00:00")
    rows: list[dict[str, np.ndarray]] = []
    machines = []
    bursts = []
    for m in range(cfg.n_machines):
        mrng = np.random.default_rng([cfg.seed, m])
        sev_grid, t_fail, kind = _degradation(mrng, cfg, grid)
        t_stop = min(t_end, t_fail)
        wake = _wake_times(mrng, cfg.sampling, t_stop)
        ok = _delivered(mrng, cfg.sampling, len(wake))
        t_h = wake[ok]
        mid = f"M{m:03d}"
        machines.append(
            {
                "machine_id": mid,
                "fault_type": kind,
                "failure_time": start + np.timedelta64(round(t_fail * 3600), "s") if np.isfinite(t_fail) else pd.NaT,
                "fails_in_run": bool(t_fail <= t_end),
                "n_wakeups": len(wake),
                "n_readings": len(t_h),
            }
        )
        if len(t_h) == 0:
            continue
        sev = np.interp(t_h, grid, sev_grid)
        speed, load = _regimes(mrng, cfg, t_h)
        fault = np.full(len(t_h), kind)
        gain = float(np.exp(cfg.machine_spread * mrng.standard_normal()))
        fn_scale = float(1.0 + cfg.resonance_spread * mrng.standard_normal())
        x = synthesize_bursts(cfg, mrng, speed, load, sev, fault, gain, fn_scale)
        feats = burst_features(cfg, x, speed)
        # temperature: ambient day cycle + load heating + friction heat from the fault
        heat = np.where(kind == "bearing", 18.0, 5.0) * sev**2
        temp = 22 + 4 * np.sin(2 * np.pi * (t_h / 24.0 - 0.25)) + 20 * load + heat
        temp = temp + 0.5 * mrng.standard_normal(len(t_h))
        for name in feats:
            if name != "freq_shift":
                feats[name] = feats[name] * (1 + cfg.feature_noise * mrng.standard_normal(len(t_h)))
            else:
                feats[name] = feats[name] + 5.0 * mrng.standard_normal(len(t_h))  # Hz of estimator noise
        rul = (t_fail - t_h) / 24.0
        row = {
            "machine_id": np.full(len(t_h), mid),
            "timestamp": start + (t_h * 3600.0).round().astype("timedelta64[s]"),
            **feats,
            "temperature": temp,
            "speed_rpm": speed,
            "load": load,
            "fault_type": fault,
            "severity": sev,
            "rul_days": rul,
            "fails_within_h": (rul <= H).astype(np.int8),
        }
        rows.append(row)
        if return_bursts:
            bursts.append(x.astype(np.float32))
    cols = ("machine_id", "timestamp", *FEATURES, *HIDDEN, *TARGETS)
    if rows:
        df = pd.DataFrame({c: np.concatenate([r[c] for r in rows]) for c in cols})
    else:
        df = pd.DataFrame({c: [] for c in cols})
    df["timestamp"] = pd.to_datetime(df["timestamp"])
    df.attrs["horizon_days"] = H
    return Fleet(
        readings=df.reset_index(drop=True),
        machines=pd.DataFrame(machines),
        config=cfg,
        bursts=np.concatenate(bursts) if return_bursts and bursts else None,
    )


def simulate(
    n_machines: int = 60,
    days: float = 60.0,
    *,
    seed: int = 0,
    horizon_days: float = 14.0,
    config: FleetConfig | None = None,
    return_bursts: bool = False,
    **overrides: Any,
) -> pd.DataFrame:
    """Simulate a fleet and return its readings as a long-format DataFrame.

    Columns: ``machine_id``, ``timestamp`` (datetime64), the gateway features (:data:`FEATURES`),
    hidden truth (``fault_type``, ``severity``; not for use as features), and targets ``rul_days``
    (days to failure; ``inf`` for a machine that never fails) and ``fails_within_h`` (1 if the
    machine fails within ``horizon_days``). Each machine's series ends at its failure.

    Any :class:`FleetConfig` or :class:`SamplingConfig` field can be passed as a keyword
    (``wake_period_h=1.0``, ``loss_bad=0.5``...). The same ``seed`` gives the same fleet.
    ``return_bursts=True`` attaches the raw bursts (n_readings, burst_len), one row per reading,
    as ``df.attrs["bursts"]``; :func:`simulate_fleet` also returns per-machine truth.
    """
    base = config if config is not None else FleetConfig()
    d = base.to_dict()
    d.update(n_machines=n_machines, days=days, seed=seed, horizon_days=horizon_days)
    cfg = FleetConfig.from_dict(d)
    fleet = simulate_fleet(cfg, return_bursts=return_bursts, **overrides)
    df = fleet.readings
    if return_bursts:
        df.attrs["bursts"] = fleet.bursts
    return df
