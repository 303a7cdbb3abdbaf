"""Figures logged with each training run (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

CURVE_METRICS = ("precision", "recall", "ndcg", "map", "hit_rate")


def metrics_at_k_figure(curves: dict[str, dict[str, list[float]]]) -> Figure:
    """One panel per metric, one line per model: the value at K = 1 .. len(curve).

    curves: {model name: {metric: [value at K=1, K=2, ...]}} (models_ml.evaluate.Scores.curve).
    """
    fig, axes = plt.subplots(1, len(CURVE_METRICS), figsize=(4 * len(CURVE_METRICS), 3.6))
    for ax, metric in zip(axes, CURVE_METRICS, strict=True):
        for model, curve in curves.items():
            values = curve[metric]
            ax.plot(np.arange(1, len(values) + 1), values, marker=".", label=model)
        ax.set_title(f"{metric}@K")
        ax.set_xlabel("K")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle("Time holdout, warm users: model vs baselines")
    fig.tight_layout()
    return fig


def long_tail_figure(
    train_counts: np.ndarray, recommended_counts: np.ndarray, k: int, bins: int = 100
) -> Figure:
    """Items ordered by training popularity, in at most `bins` equal groups of ranks: the mean
    train interactions of each group (log scale) and its share of all recommendations.

    train_counts and recommended_counts are aligned per item. Drawn from these aggregates, so a
    million-item catalog costs a sort, not a million bars.
    """
    order = np.argsort(-train_counts, kind="stable")
    n = len(order)
    edges = np.unique(np.linspace(0, n, min(bins, n) + 1).astype(np.int64))
    starts, sizes = edges[:-1], np.diff(edges)
    mean_train = np.add.reduceat(train_counts[order], starts) / sizes
    recommended = np.add.reduceat(recommended_counts[order], starts)
    total = max(recommended_counts.sum(), 1)
    share = recommended / total
    x = 100.0 * edges[1:] / n  # the group's last rank, as a percentile of the catalog
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.step(x, np.maximum(mean_train, 1e-3), where="post", color="gray",
            label="mean train interactions")  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlabel(f"items by training popularity (rank percentile; {n:,} items)")
    ax.set_ylabel("mean train interactions (log)")
    twin = ax.twinx()
    twin.bar(x - 100.0 * sizes / n / 2, share, width=100.0 * sizes / n, alpha=0.4,
             color="tab:red", label=f"share of top-{k} recommendations")  # fmt: skip
    twin.set_ylabel(f"share of top-{k} recommendations")
    head = max(1, int(0.2 * n))
    head_share = recommended_counts[order][:head].sum() / total
    ax.set_title(
        f"Popularity long tail: {head_share:.0%} of recommendations go to the top 20% items"
    )
    lines = ax.get_legend_handles_labels()
    twin_lines = twin.get_legend_handles_labels()
    ax.legend(lines[0] + twin_lines[0], lines[1] + twin_lines[1], loc="upper right")
    fig.tight_layout()
    return fig


def close(fig: Figure) -> None:
    plt.close(fig)
