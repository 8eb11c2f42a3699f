"""Models, timing and the measured sections (train, infer, stream, scaling, memory) of the benchmark."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MODELS = ("cfc64", "ltc64", "cfc_ncp", "ltc_ncp")
MODEL_TITLES = {
    "cfc64": "CfC, 64 units",
    "ltc64": "LTC, 64 units (6 unfolds)",
    "cfc_ncp": "CfC, AutoNCP(32, 10)",
    "ltc_ncp": "LTC, AutoNCP(32, 10)",
    "lstm": "nn.LSTM(20, 64)",
    "gru": "nn.GRU(20, 64)",
}
IMPLS = ("liquidflow", "ncps")
# liquidflow with its native C kernels switched off (the torch kernels of liquidflow._ops.fused):
# timed alongside to show what the C kernels add
TORCH_IMPL = "liquidflow-torch"
BATCH, STEPS, FEATURES = 32, 100, 20
SCALING_T = (10, 100, 1000, 10000)
SECTIONS = ("train", "infer", "stream", "configs", "batch", "scaling", "memory")
MEMORY_T = (250, 1000)
TARGETS = {  # speed-up over ncps required by issue 8 (train = forward + backward)
    ("train", "cfc64"): 4.0,
    ("train", "ltc64"): 5.0,
    ("train", "cfc_ncp"): 10.0,
    ("train", "ltc_ncp"): 10.0,
    ("stream", "cfc64"): 5.0,
    ("stream", "ltc64"): 5.0,
    ("stream", "cfc_ncp"): 5.0,
    ("stream", "ltc_ncp"): 5.0,
}
LSTM_TARGET = ("train", "cfc64", 2.5)  # CfC 64 within 2.5x of nn.LSTM(20, 64)


@dataclass
class Settings:
    """What to measure and how hard."""

    threads: int = 2
    quick: bool = False
    warmup: int = 2
    repeats: int = 7
    budget_s: float = 4.0  # target seconds of timing per case (repeats shrink for slow cases, min 3)
    max_call_s: float = 0.0  # sweeps: skip a case whose call (extrapolated) would take longer; 0: no limit
    batch: int = BATCH
    steps: int = STEPS
    features: int = FEATURES
    stream_steps: int = 200
    scaling_t: tuple[int, ...] = SCALING_T
    memory_t: tuple[int, ...] = MEMORY_T
    scaling_peers: bool = True  # also time ncps / LSTM in the scaling sweep
    models: tuple[str, ...] = MODELS
    sections: tuple[str, ...] = SECTIONS
    configs: tuple[str, ...] = ()  # rows of the configs section (empty: all)

    @classmethod
    def quick_settings(cls, threads: int = 2) -> Settings:
        return cls(
            threads=threads,
            quick=True,
            warmup=1,
            repeats=2,
            budget_s=0.5,
            steps=20,
            stream_steps=20,
            scaling_t=(10, 40),
            configs=("cfc64", "cfc64_pure", "ltc_ncp", "ltc_ncp_euler"),
            memory_t=(50,),
        )


@dataclass
class Result:
    section: str
    model: str
    impl: str
    seq_len: int
    batch: int
    median_ms: float | None = None
    iqr_ms: float | None = None
    repeats: int = 0
    peak_rss_mb: float | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------- models
def build_model(model: str, impl: str, features: int = FEATURES, seed: int = 0) -> Any:
    """A sequence model (``batch_first``) for ``model`` in {cfc64, ltc64, cfc_ncp, ltc_ncp, lstm, gru}."""
    import torch

    torch.manual_seed(seed)
    if model in ("lstm", "gru"):
        cls = torch.nn.LSTM if model == "lstm" else torch.nn.GRU
        return cls(features, 64, batch_first=True)
    if impl in ("liquidflow", TORCH_IMPL):
        from liquidflow import wirings
        from liquidflow.torch import LTC, CfC
    elif impl == "ncps":
        from ncps import wirings  # type: ignore[no-redef]
        from ncps.torch import LTC, CfC  # type: ignore[no-redef]
    else:
        raise ValueError(f"impl must be one of {IMPLS}; got {impl!r}")
    if model == "cfc64":
        return CfC(features, 64)
    if model == "ltc64":
        return LTC(features, 64)
    if model == "cfc_ncp":
        return CfC(features, wirings.AutoNCP(32, 10))
    if model == "ltc_ncp":
        return LTC(features, wirings.AutoNCP(32, 10))
    raise ValueError(f"model must be one of {(*MODELS, 'lstm', 'gru')}; got {model!r}")


def _train_fn(model: Any, x: Any) -> Callable[[], None]:
    def run() -> None:
        for p in model.parameters():
            p.grad = None
        out = model(x)[0]
        out.square().mean().backward()

    return run


def _infer_fn(model: Any, x: Any) -> Callable[[], None]:
    import torch

    def run() -> None:
        with torch.no_grad():
            model(x)

    return run


def _stream_fn(model_name: str, impl: str, model: Any, xs: Any) -> Callable[[], None]:
    """Runs ``len(xs)`` single steps at batch 1, carrying the state."""
    import torch

    n = xs.shape[0]
    if model_name in ("lstm", "gru"):
        cell = torch.nn.LSTMCell(xs.shape[-1], 64) if model_name == "lstm" else torch.nn.GRUCell(xs.shape[-1], 64)

        def run() -> None:
            with torch.no_grad():
                state: Any = None
                for t in range(n):
                    state = cell(xs[t], state)

        return run
    if impl == "liquidflow":

        def run() -> None:
            with torch.no_grad():
                h = None
                for t in range(n):
                    _, h = model.step(xs[t], h, 1.0)

        return run
    cell = model.rnn_cell
    size = model.state_size

    def run_ncps() -> None:
        with torch.no_grad():
            h = torch.zeros(1, size)
            for t in range(n):
                _, h = cell(xs[t], h, 1.0)

    return run_ncps


def _time(fn: Callable[[], None], settings: Settings) -> tuple[float, float, int]:
    """(median ms, interquartile range ms, repeats) of one function; see :func:`_time_group`."""
    stats = _time_group({"f": fn}, settings)["f"]
    return stats["median_ms"], stats["iqr_ms"], stats["repeats"]


def _time_group(fns: dict[str, Callable[[], None]], settings: Settings) -> dict[str, dict[str, Any]]:
    """Time several functions with their repeats interleaved (a, b, c, a, b, c, ...).

    Interleaving exposes every contender to the same background load, so the ratios stay fair on
    a busy machine. Warm-up runs come first; repeats shrink for slow groups (at least 3).
    """
    once = 0.0
    for fn in fns.values():  # warmup == 0: the caller has warmed up already
        t0 = time.perf_counter()
        for _ in range(settings.warmup):
            fn()
        once += (time.perf_counter() - t0) / max(settings.warmup, 1)
    repeats = settings.repeats
    if settings.warmup and once * repeats > settings.budget_s:
        repeats = max(min(3, settings.repeats), int(settings.budget_s / max(once, 1e-9)))
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t1 = time.perf_counter()
            fn()
            times[k].append((time.perf_counter() - t1) * 1e3)
    out = {}
    for k, ts in times.items():
        ts.sort()
        q = statistics.quantiles(ts, n=4) if len(ts) >= 2 else [ts[0]] * 3
        out[k] = {"median_ms": statistics.median(ts), "iqr_ms": q[2] - q[0], "min_ms": ts[0], "repeats": repeats}
    return out


def _without_native(fn: Callable[[], None]) -> Callable[[], None]:
    from liquidflow._native import use_native

    def run() -> None:
        with use_native(False):
            fn()

    return run


def _impls_for(model: str) -> tuple[str, ...]:
    return ("torch",) if model in ("lstm", "gru") else IMPLS


# ---------------------------------------------------------------------------------------------- sections
def _run_timed(section: str, settings: Settings, log: Callable[[str], None]) -> list[Result]:
    import torch

    results: list[Result] = []
    B, T, F = settings.batch, settings.steps, settings.features
    if section == "stream":
        B, T = 1, settings.stream_steps
    g = torch.Generator().manual_seed(1)
    x = torch.randn(T, 1, F, generator=g) if section == "stream" else torch.randn(B, T, F, generator=g)
    # each liquid model is timed interleaved with its ncps twin and with nn.LSTM / nn.GRU
    for model_name in settings.models:
        group: dict[tuple[str, str], Callable[[], None]] = {}
        pending: list[Result] = []
        contenders = [(model_name, i) for i in (*IMPLS, TORCH_IMPL)] + [("lstm", "torch"), ("gru", "torch")]
        for name, impl in contenders:
            res = Result(section, name, impl, T, B)
            try:
                model = build_model(name, impl, F)
                if section == "stream":
                    fn = _stream_fn(name, "liquidflow" if impl == TORCH_IMPL else impl, model, x)
                elif section == "train":
                    fn = _train_fn(model, x)
                else:
                    fn = _infer_fn(model, x)
                group[(name, impl)] = _without_native(fn) if impl == TORCH_IMPL else fn
                group[(name, impl)]()  # fail here, not inside the timing loop
            except Exception as e:  # a failing peer is reported, not fatal
                res.error = f"{type(e).__name__}: {e}"
                group.pop((name, impl), None)
            pending.append(res)
        stats = _time_group({f"{k[0]}/{k[1]}": f for k, f in group.items()}, settings)
        for res in pending:
            st = stats.get(f"{res.model}/{res.impl}")
            if st is not None:
                div = T if section == "stream" else 1  # streaming: per step
                res.median_ms, res.iqr_ms, res.repeats = st["median_ms"] / div, st["iqr_ms"] / div, st["repeats"]
                res.extra = {"min_ms": st["min_ms"] / div, "group": model_name}
            if res.model in ("lstm", "gru"):
                res.extra["group"] = model_name
            results.append(res)
            log(_fmt(res))
    return results


def _rss_while(fn: Callable[[], None]) -> tuple[float, float]:
    """Run ``fn`` once; (resident memory before, its peak during the run) in MB, sampled every 0.5 ms."""
    import threading

    base = _rss_mb()
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mb())
            time.sleep(0.0005)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    try:
        fn()
    finally:
        done.set()
        th.join()
    return base, peak[0]


def _peak_rss_during(fn: Callable[[], None]) -> float:
    """Run ``fn`` once; the peak resident memory (MB) it added."""
    base, peak = _rss_while(fn)
    return max(peak - base, 0.0)


def _run_scaling(settings: Settings, log: Callable[[str], None]) -> list[Result]:
    """Forward + backward for each T; a case whose memory, extrapolated linearly from the shorter
    sequences, would exceed half the available memory is skipped (ncps' LTC needs ~16 GB at T = 1000)."""
    import torch

    results: list[Result] = []
    s = Settings(**{**asdict(settings), "warmup": 0, "repeats": min(settings.repeats, 3)})
    for model_name in [*settings.models, "lstm"]:
        impls = _impls_for(model_name)
        if not settings.scaling_peers:
            impls = tuple(i for i in impls if i != "ncps")
        models = {impl: build_model(model_name, impl, settings.features) for impl in impls}
        per_step_mb = dict.fromkeys(impls, 0.0)
        per_step_s = dict.fromkeys(impls, 0.0)
        for T in settings.scaling_t:
            x = torch.randn(settings.batch, T, settings.features, generator=torch.Generator().manual_seed(1))
            fns = {}
            for impl, m in models.items():
                why = sweep_skip(per_step_mb[impl] * T, per_step_s[impl] * T, settings, "T")
                if why:
                    res = Result("scaling", model_name, impl, T, settings.batch)
                    res.error = why
                    results.append(res)
                    log(_fmt(res))
                    continue
                fn = _train_fn(m, x)
                # the last size's MB per step (also the warm-up run); not the largest so far, which is the
                # shortest T's, where the fixed cost dominates (CfC 64: ~1 MB/step at T = 10 -> 12 GB at 10000)
                per_step_mb[impl] = _peak_rss_during(fn) / T
                fns[impl] = fn
            stats = _time_group(fns, s)
            for impl, st in stats.items():
                per_step_s[impl] = st["median_ms"] / 1e3 / T
                extra = {"min_ms": st["min_ms"], "mb_per_step": per_step_mb[impl]}
                res = Result("scaling", model_name, impl, T, settings.batch, st["median_ms"], st["iqr_ms"],
                             st["repeats"], extra=extra)  # fmt: skip
                results.append(res)
                log(_fmt(res))
    return results


def sweep_skip(need_mb: float, need_s: float, settings: Settings, axis: str) -> str | None:
    """Why a sweep case is skipped (None: it runs): its memory or, with ``settings.max_call_s``, its
    time per call, both extrapolated linearly in ``axis`` from the previous size, would be too large."""
    if need_mb > 0.5 * _available_mb():
        return f"skipped: would need about {need_mb:.0f} MB (linear in {axis}), over half the free memory"
    if settings.max_call_s and need_s > settings.max_call_s:
        return f"skipped: would take about {need_s:.1f} s a call (linear in {axis}), over max_call_s"
    return None


def _available_mb() -> float:
    """Memory available to a new process (Linux MemAvailable; unlimited elsewhere)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("inf")


def _rss_mb() -> float:
    """Current resident set size in MB (Linux /proc; falls back to max RSS elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import resource

        scale = 1024.0 if sys.platform != "darwin" else 1024.0 * 1024.0
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def measure_memory(model: str, impl: str, seq_len: int, batch: int, features: int, threads: int) -> dict[str, float]:
    """Peak resident memory (MB) of one training step, above the memory in use just before it.

    Meant to run in a fresh process (``python -m liquidflow.bench --memory-case ...``). The peak is
    the larger of the process's max RSS (if the step raised it) and the RSS sampled every 0.5 ms by
    a background thread during the step; the baseline is the RSS after a warm-up step on a 2-step
    sequence and returning freed memory to the OS.
    """
    import gc
    import resource

    import torch

    torch.set_num_threads(threads)
    m = build_model(model, impl, features)
    x = torch.randn(batch, seq_len, features)
    _train_fn(m, x[:, :2])()  # warm the allocator and kernels
    for p in m.parameters():
        p.grad = None
    gc.collect()
    try:  # hand freed heap back to the OS so the baseline is live memory (glibc only)
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    scale = 1024.0 if sys.platform != "darwin" else 1024.0 * 1024.0
    max_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale
    base, peak = _rss_while(_train_fn(m, x))
    max_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale
    top = max(peak, max_after if max_after > max_before else 0.0)
    return {"base_mb": base, "peak_mb": top, "delta_mb": top - base}


def _run_memory(settings: Settings, log: Callable[[str], None]) -> list[Result]:
    results: list[Result] = []
    for model_name in [*settings.models, "lstm"]:
        for impl in _impls_for(model_name):
            prev: tuple[int, float] | None = None
            for T in sorted(settings.memory_t):
                res = Result("memory", model_name, impl, T, settings.batch)
                need = prev[1] * T / prev[0] if prev else 0.0  # linear extrapolation from the shorter run
                if need > 0.5 * _available_mb():
                    res.error = f"skipped: would need about {need:.0f} MB (linear in T from T={prev[0] if prev else 0})"
                    results.append(res)
                    log(_fmt(res))
                    continue
                cmd = [sys.executable, "-m", "liquidflow.bench", "--memory-case", model_name, impl, str(T),
                       str(settings.batch), str(settings.features), str(settings.threads)]  # fmt: skip
                try:
                    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
                    if proc.returncode != 0:
                        res.error = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"
                    else:
                        data = json.loads(proc.stdout.strip().splitlines()[-1])
                        res.peak_rss_mb = data["delta_mb"]
                        res.extra = data
                        prev = (T, float(data["delta_mb"]))
                except Exception as e:
                    res.error = f"{type(e).__name__}: {e}"
                results.append(res)
                log(_fmt(res))
    return results


def _fmt(r: Result) -> str:
    what = f"{r.section:8s} {r.model:8s} {r.impl:10s} T={r.seq_len:<5d} B={r.batch:<3d}"
    if r.error:
        return f"{what} ERROR {r.error}"
    if r.peak_rss_mb is not None:
        return f"{what} peak +{r.peak_rss_mb:.1f} MB"
    return f"{what} {r.median_ms:.3f} ms (iqr {r.iqr_ms:.3f}, n={r.repeats})"


def sweep_table(title: str, axis: str, values: list[int], rows: list[tuple[str, str, str]],
                cell: Callable[[str, str, int], str]) -> list[str]:  # fmt: skip
    """Markdown: one row per (label, model, impl) that has a value, one column per ``axis = value``."""
    out = [title, "", "| model | impl | " + " | ".join(f"{axis} = {v}" for v in values) + " |",
           "|---|---|" + "---:|" * len(values)]  # fmt: skip
    for label, model, impl in rows:
        cells = [cell(model, impl, v) for v in values]
        if any(c != "—" for c in cells):
            out.append(f"| {label} | {impl} | " + " | ".join(cells) + " |")
    out.append("")
    return out
