"""Figures of a run: training curves and a confusion matrix.

Figures are built on `matplotlib.figure.Figure` with the Agg canvas (never pyplot), so nothing
is shown, no global figure state leaks, and callers decide where to save or log them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from ecg_platform.engine.history import EpochRecord

CURVES = (("loss", "Loss (cross-entropy)"), ("balanced_accuracy", "Balanced accuracy"))
CLASS_NAMES = ("normal", "abnormal")


def agg_figure(width: float, height: float) -> Figure:
    """An empty figure on the Agg canvas (no pyplot state)."""
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def training_curves_figure(
    history: Sequence[EpochRecord], best_epoch: int, averaged_epochs: int = 0
) -> Figure:
    """Loss and balanced accuracy per epoch, train vs validation, the kept weights marked: the
    best epoch, or the span of the last `averaged_epochs` whose mean was kept."""
    figure = agg_figure(10, 4)
    epochs = [record.epoch for record in history]
    for axes, (metric, label) in zip(figure.subplots(1, 2), CURVES, strict=True):
        for split in ("train", "val"):
            values = [getattr(record, split)[metric] for record in history]
            axes.plot(epochs, values, marker="o", markersize=3, label=split)
        if averaged_epochs:
            first, last = epochs[-averaged_epochs], epochs[-1]
            span = f"weights averaged ({first}-{last})"
            axes.axvspan(first - 0.5, last + 0.5, color="grey", alpha=0.15, label=span)
        else:
            best = f"best epoch ({best_epoch})"
            axes.axvline(best_epoch, color="grey", linestyle="--", label=best)
        axes.set(xlabel="epoch", ylabel=label, title=label)
        axes.grid(alpha=0.3)
        axes.legend()
    return figure


def confusion_matrix_figure(tn: int, fp: int, fn: int, tp: int, title: str = "") -> Figure:
    """The 2x2 matrix (rows: true class, columns: predicted) with counts and row shares."""
    counts = np.array([[tn, fp], [fn, tp]])
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    figure = agg_figure(4.5, 4)
    axes = figure.subplots()
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axes, label="share of the true class")
    for row in range(2):
        for column in range(2):
            colour = "white" if shares[row, column] > 0.5 else "black"
            text = f"{counts[row, column]}\n{shares[row, column]:.1%}"
            axes.text(column, row, text, ha="center", va="center", color=colour)
    axes.set(
        xticks=[0, 1],
        yticks=[0, 1],
        xticklabels=CLASS_NAMES,
        yticklabels=CLASS_NAMES,
        xlabel="predicted",
        ylabel="true",
        title=title,
    )
    return figure


def confusion_matrix_figure_k(
    counts: np.ndarray, class_names: Sequence[str], title: str = ""
) -> Figure:
    """A K x K matrix (rows: true class, columns: predicted) with counts, shaded by row share.

    Shares rather than counts colour the cells so that rare classes (S, F, Q) stay readable
    next to thousands of N beats; a class without true beats is a white row of zeros."""
    counts = np.asarray(counts)
    size = len(class_names)
    if counts.shape != (size, size):
        raise ValueError(f"expected a {size}x{size} matrix, got shape {counts.shape}")
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    figure = agg_figure(1.1 * size + 2.5, 1.1 * size + 1.5)
    axes = figure.subplots()
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axes, label="share of the true class")
    for row in range(size):
        for column in range(size):
            colour = "white" if shares[row, column] > 0.5 else "black"
            axes.text(column, row, str(counts[row, column]), ha="center", va="center", color=colour)
    ticks = list(range(size))
    axes.set(
        xticks=ticks,
        yticks=ticks,
        xticklabels=class_names,
        yticklabels=class_names,
        xlabel="predicted",
        ylabel="true",
        title=title,
    )
    return figure
