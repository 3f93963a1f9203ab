"""Charts (matplotlib): the book's measurements, and a class's grades for the class report.

Functions here take plain numbers or tables (measured by :mod:`containerlab.layers`,
counted by :mod:`containerlab.classstats`) and give back a matplotlib ``Figure``;
they never talk to the engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

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


# --------------------------------------------------------------------------- a class's grades

#: Colours of the verdicts in :func:`check_outcomes`, left to right.
VERDICT_COLOURS = {"passed": "#59a14f", "failed": "#e15759", "not attempted": "#bab0ac", "not graded": "#f1ce63"}


def score_spread(counts: Mapping[str, Mapping[float, int]], maxima: Mapping[str, float], *,
                 title: str = "Points per exercise") -> Figure:
    """One bar chart per exercise: how many students got each score.

    Args:
        counts: exercise key to score (points) to number of students, drawn left to right.
        maxima: exercise key to its points available (named under its chart).
        title: the figure's title.

    Returns:
        The figure.
    """
    keys = list(counts)
    fig, axes = plt.subplots(1, max(len(keys), 1), figsize=(3.2 * max(len(keys), 1) + 0.5, 3), squeeze=False)
    for ax, key in zip(axes[0], keys):
        scores = sorted(counts[key])
        ax.bar([f"{s:g}" for s in scores], [counts[key][s] for s in scores], color="#4e79a7")
        ax.set_title(key)
        ax.set_xlabel(f"points (of {maxima[key]:g})")
        ax.tick_params(axis="x", labelsize="small")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # students come whole
        ax.spines[["top", "right"]].set_visible(False)
    axes[0][0].set_ylabel("students")
    fig.suptitle(title)
    fig.tight_layout()
    plt.close(fig)
    return fig


def check_outcomes(table: pd.DataFrame, *, title: str) -> Figure:
    """Stacked horizontal bars, one per check: students per verdict.

    Args:
        table: one row per check (its label as the index, drawn top to bottom) and a column of
            student counts for each verdict of :data:`VERDICT_COLOURS` that it has.
        title: the chart's title.

    Returns:
        The figure.
    """
    labels = list(table.index)[::-1]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(labels) + 1.4))
    left = pd.Series(0, index=labels)
    for verdict, colour in VERDICT_COLOURS.items():
        if verdict not in table or table[verdict].sum() == 0:
            continue
        values = table[verdict].reindex(labels)
        ax.barh(labels, values, left=left, color=colour, label=verdict)
        left += values
    ax.set_xlabel("students")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title)
    ax.tick_params(axis="y", labelsize="small")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12 - 0.5 / max(len(labels), 1)), ncol=4,
              frameon=False, fontsize="small")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    plt.close(fig)
    return fig


def ranking(counts: Sequence[tuple[str, int]], *, xlabel: str, title: str) -> Figure:
    """Horizontal bars of counts, the first pair on top, each labelled with its count.

    Args:
        counts: ``(label, count)`` pairs, e.g. a cause of failure and the students it hit.
        xlabel: what is counted.
        title: the chart's title.

    Returns:
        The figure.
    """
    labels = [label for label, _ in counts][::-1]
    values = [n for _, n in counts][::-1]
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(labels) + 1.2))
    bars = ax.barh(labels, values, color="#e15759")
    longest = max(values, default=0) or 1
    for bar, value in zip(bars, values):
        ax.text(bar.get_width() + longest * 0.01, bar.get_y() + bar.get_height() / 2, str(value), va="center")
    ax.set_xlim(0, longest * 1.15)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    plt.close(fig)
    return fig
