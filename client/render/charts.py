"""Charts for the HTML reports, drawn by matplotlib as inline SVG (no network needed to view them).

matplotlib is the optional `report` extra (`pip install '.[report]'`), imported only here and only when a report
is written, so `diagnose --test` stays fast. Without it, `available()` is False and the reports say
so instead of showing charts.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

_COLORS = {"cold": "#d9822b", "warm": "#2b7bb9", "fail": "#c23030", "ok": "#0f9960", "p50": "#333", "p95": "#8a2be2"}


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(height: float = 2.8) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    matplotlib.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "comfy-runpod", "font.size": 9})
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(5.0, height), layout="constrained")
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def _svg(fig: Any, title: str) -> str:
    """The figure as an <svg> element (text kept as text, so it scales and can be searched)."""
    from matplotlib import pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]
    return svg.replace("<svg ", f'<svg class="chart" role="img" aria-label="{_attr(title)}" ', 1)


def _attr(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def runs_chart(
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    *,
    p50: float | None = None,
    p95: float | None = None,
    colors: Sequence[str] | None = None,
    ylabel: str = "seconds",
) -> str:
    """One bar per run, with the p50 and p95 marked as lines."""
    fig, ax = _figure()
    ax.bar(range(len(values)), values, color=list(colors) if colors else _COLORS["warm"])
    ax.set_xticks(
        range(len(values)), labels, rotation=30 if len(labels) > 6 else 0, ha="right" if len(labels) > 6 else "center"
    )
    for value, name in ((p50, "p50"), (p95, "p95")):
        if value is not None:
            ax.axhline(value, color=_COLORS[name], linestyle="--" if name == "p50" else ":", linewidth=1.2)
            ax.annotate(f"{name} {value:g} s", (1, value), xycoords=("axes fraction", "data"), ha="right", va="bottom")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    return _svg(fig, title)


def hbar_chart(
    title: str, labels: Sequence[str], values: Sequence[float], *, xlabel: str, percent: bool = False
) -> str:
    """Horizontal bars (per-node time, success rate per workflow), each labelled with its value."""
    fig, ax = _figure(max(1.6, 0.35 * len(values) + 1.0))
    color = [_COLORS["ok"] if v >= 1 else _COLORS["fail"] for v in values] if percent else _COLORS["warm"]
    bars = ax.barh(range(len(values)), values, color=color)
    ax.set_yticks(range(len(values)), labels)
    ax.invert_yaxis()
    ax.bar_label(bars, labels=[f"{v:.0%}" if percent else f"{v:g}" for v in values], padding=3)
    if percent:
        ax.set_xlim(0, 1.15)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    return _svg(fig, title)


def trend_chart(title: str, labels: Sequence[str], series: dict[str, Sequence[float | None]], ylabel: str) -> str:
    """Lines over runs (oldest first): p50/p95 over time, cold start, cost."""
    fig, ax = _figure()
    for name, values in series.items():
        points = [(i, v) for i, v in enumerate(values) if v is not None]
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=name)
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.legend(loc="best", frameon=False)
    return _svg(fig, title)
