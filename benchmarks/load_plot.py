"""``load.png``: latency histogram (hits vs misses), IdP calls over time, throughput, RSS per instance.

matplotlib is optional (``pip install -r benchmarks/requirements.txt``); without it the report says so.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from benchmarks.load_results import LoadRun
from benchmarks.load_runner import Series
from benchmarks.load_targets import RSS_TARGET_MIB


def _pyplot() -> Any:
    matplotlib = importlib.import_module("matplotlib")
    matplotlib.use("Agg")
    return importlib.import_module("matplotlib.pyplot")


def _latency(axis: Any, run: LoadRun) -> None:
    decisions = run.decisions
    groups = [("verdict-cache hits", decisions.latency_hit), ("misses", decisions.latency_miss)]
    if not decisions.aligned:
        groups = [("all requests", run.latencies)]
    everything = run.latencies or [1000]
    low, high = max(min(everything) / 1e3, 0.1), max(everything) / 1e3
    bins: Any = [low * (high / low) ** (i / 60) for i in range(61)] if high > low else 60
    for label, values in groups:
        if values:
            axis.hist([v / 1e3 for v in values], bins=bins, alpha=0.6, label=f"{label} ({len(values):,})")
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set(xlabel="handler latency (µs, log)", ylabel="requests (log)", title="Latency distribution")
    axis.legend()


def _idp_calls(axis: Any, series: Series) -> tuple[list[Any], list[str]]:
    """Discovery and key-set fetches (left axis), introspection calls (right axis); the legend's entries."""
    for name in ("discovery", "jwks"):
        axis.step(series.t, getattr(series, name), where="post", label=name)
    axis.set(
        xlabel="seconds since start", ylabel="discovery / key-set fetches (cumulative)", title="IdP calls over time"
    )
    axis.set_ylim(bottom=0, top=max([*series.discovery, *series.jwks, 1]) + 1)
    handles, labels = axis.get_legend_handles_labels()
    if any(series.introspection):
        twin = axis.twinx()
        twin.step(series.t, series.introspection, where="post", color="tab:green", label="introspection")
        twin.set_ylabel("introspection calls (cumulative)")
        more = twin.get_legend_handles_labels()
        handles, labels = handles + more[0], labels + more[1]
    return handles, labels


def _throughput(axis: Any, series: Series, window: int = 10) -> None:
    pairs = zip(series.done, series.done[1:], series.t, series.t[1:], strict=False)
    rates = [0.0] + [(b - a) / max(tb - ta, 1e-9) for a, b, ta, tb in pairs]
    smooth = [sum(rates[max(0, i - window + 1) : i + 1]) / len(rates[max(0, i - window + 1) : i + 1])
              for i in range(len(rates))]  # fmt: skip
    axis.plot(series.t, smooth, color="tab:gray")
    axis.set(xlabel="seconds since start", ylabel="requests/s (all instances)", title="Throughput")


def _memory(axis: Any, run: LoadRun) -> None:
    for summary in run.summaries:
        samples = summary["rss_samples"]
        axis.plot([d for d, _ in samples], [k / 1024 for _, k in samples], label=f"instance {summary['index']}")
    axis.axhline(RSS_TARGET_MIB, color="tab:red", linestyle=":", label=f"{RSS_TARGET_MIB:.0f} MiB target")
    axis.set(xlabel="requests done by the instance", ylabel="RSS (MiB)", title="Memory per instance")
    axis.set_ylim(bottom=0)
    axis.legend(loc="lower right")


def plot(path: Path, run: LoadRun) -> str | None:
    """Write the plot to ``path``; ``None``, or why no plot was written."""
    try:
        plt = _pyplot()
    except ImportError:
        return "matplotlib is not installed (pip install -r benchmarks/requirements.txt): no plot"
    fig, (left, middle, right, memory) = plt.subplots(1, 4, figsize=(21, 4.5))
    _latency(left, run)
    handles, labels = _idp_calls(middle, run.run.series)
    _throughput(right, run.run.series)
    if run.run.rotated_at is not None:
        for axis in (middle, right):
            line = axis.axvline(run.run.rotated_at, color="tab:red", linestyle="--", label="key rotation")
        handles, labels = [*handles, line], [*labels, "key rotation"]
    middle.legend(handles, labels, loc="center right")
    _memory(memory, run)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None
