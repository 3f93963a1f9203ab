"""Charts for the book's measurements (matplotlib); measurement lives in :mod:`containerlab.layers`.

Functions here take plain numbers or the tables :mod:`containerlab.layers`
returns and give back a matplotlib ``Figure``; they never talk to the engine.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

#: Colours of the layer categories in :func:`layer_chart`, bottom to top.
CATEGORY_COLOURS = {
    "base image": "#9e9e9e",
    "system packages": "#8c6bb1",
    "Python packages": "#f28e2b",
    "your code and settings": "#4e79a7",
}


def build_times(seconds: Mapping[str, float], *, title: str = "Build wall time") -> Figure:
    """A horizontal bar chart of build wall times, each bar labelled with its value.

    Args:
        seconds: bar label (e.g. ``"cold build"``) to wall time in seconds, drawn top to bottom.
        title: the chart title.

    Returns:
        The figure (display it, or save it with ``savefig``).
    """
    labels = list(seconds)[::-1]
    values = [seconds[label] for label in labels]
    fig, ax = plt.subplots(figsize=(7, 0.6 * len(labels) + 1.2))
    bars = ax.barh(labels, values, color="#4e79a7")
    longest = max(values, default=0) or 1
    for bar, value in zip(bars, values):
        ax.text(bar.get_width() + longest * 0.01, bar.get_y() + bar.get_height() / 2,
                f"{value:.1f} s", va="center")
    ax.set_xlim(0, longest * 1.15)
    ax.set_xlabel("seconds (wall time)")
    ax.set_title(title)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    plt.close(fig)
    return fig


def categorise(instruction: str) -> str:
    """The category of one row of :func:`containerlab.layers.layer_breakdown`.

    Returns:
        One of the keys of :data:`CATEGORY_COLOURS`.
    """
    if instruction.startswith("base image") or instruction == "(imported file system)":
        return "base image"
    if "apt-get" in instruction:
        return "system packages"
    if "pip install" in instruction or "/opt/venv" in instruction:
        return "Python packages"
    return "your code and settings"


def by_category(breakdown: pd.DataFrame) -> pd.Series:
    """Sum a layer breakdown's ``size_bytes`` per category (see :func:`categorise`).

    Returns:
        Bytes per category, indexed in the order of :data:`CATEGORY_COLOURS` (zeros kept).
    """
    sums = breakdown.groupby(breakdown["instruction"].map(categorise))["size_bytes"].sum()
    return sums.reindex(list(CATEGORY_COLOURS), fill_value=0)


def layer_chart(breakdowns: Mapping[str, pd.DataFrame], *, title: str = "What each image is made of") -> Figure:
    """Stacked horizontal bars: one bar per image, split into layer categories, in MB.

    Args:
        breakdowns: image label to its :func:`containerlab.layers.layer_breakdown` table,
            drawn top to bottom.
        title: the chart title.

    Returns:
        The figure.
    """
    labels = list(breakdowns)[::-1]
    table = pd.DataFrame({label: by_category(breakdowns[label]) for label in labels}).T / 1e6
    fig, ax = plt.subplots(figsize=(8, 0.7 * len(labels) + 1.6))
    left = pd.Series(0.0, index=table.index)
    for category, colour in CATEGORY_COLOURS.items():
        if table[category].sum() == 0:
            continue
        ax.barh(table.index, table[category], left=left, color=colour, label=category)
        left += table[category]
    for y, total in enumerate(left):
        ax.text(total + left.max() * 0.01, y, f"{total:,.0f} MB", va="center")
    ax.set_xlim(0, left.max() * 1.15)
    ax.set_xlabel("size in MB (10^6 bytes, uncompressed)")
    ax.set_title(title)
    ax.legend(loc="lower right", frameon=False, fontsize="small")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    plt.close(fig)
    return fig
