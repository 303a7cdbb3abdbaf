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


def long_tail_figure(train_counts: np.ndarray, recommended_counts: np.ndarray, k: int) -> Figure:
    """Items ordered by training popularity (log scale) and how often each is recommended.

    train_counts and recommended_counts are aligned per item; the x axis is the popularity rank.
    """
    order = np.argsort(-train_counts, kind="stable")
    ranks = np.arange(1, len(order) + 1)
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.bar(ranks, train_counts[order], width=1.0, color="lightgray", label="train interactions")
    ax.set_yscale("log")
    ax.set_xlabel("items by training popularity (rank)")
    ax.set_ylabel("train interactions (log)")
    twin = ax.twinx()
    twin.plot(ranks, recommended_counts[order], ".", ms=3, color="tab:red",
              label=f"times in a top-{k} list")  # fmt: skip
    twin.set_ylabel(f"times in a top-{k} list")
    head = max(1, int(0.2 * len(order)))
    share = recommended_counts[order][:head].sum() / max(recommended_counts.sum(), 1)
    ax.set_title(f"Popularity long tail: {share:.0%} of recommendations go to the top 20% items")
    lines = ax.get_legend_handles_labels()
    twin_lines = twin.get_legend_handles_labels()
    ax.legend(lines[0] + twin_lines[0], lines[1] + twin_lines[1], loc="upper right")
    fig.tight_layout()
    return fig


def close(fig: Figure) -> None:
    plt.close(fig)
