"""Figures: what they draw, and that they render without a display."""

from __future__ import annotations

import io

from matplotlib.figure import Figure

from ecg_platform.engine.history import EpochRecord
from ecg_platform.evaluation.plots import confusion_matrix_figure, training_curves_figure


def record(epoch: int, train_loss: float, val_loss: float) -> EpochRecord:
    return EpochRecord(
        epoch=epoch,
        lr=1e-3,
        train={"loss": train_loss, "balanced_accuracy": 1 - train_loss},
        val={"loss": val_loss, "balanced_accuracy": 1 - val_loss},
        seconds=0.1,
    )


def png_bytes(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def test_training_curves_show_both_splits_and_the_best_epoch() -> None:
    history = [record(1, 0.6, 0.5), record(2, 0.4, 0.3), record(3, 0.2, 0.35)]
    figure = training_curves_figure(history, best_epoch=2)
    loss_axes, accuracy_axes = figure.axes
    assert loss_axes.get_title().startswith("Loss")
    assert accuracy_axes.get_title() == "Balanced accuracy"
    train, val, best = loss_axes.get_lines()
    assert list(train.get_xdata()) == [1, 2, 3] and list(train.get_ydata()) == [0.6, 0.4, 0.2]
    assert list(val.get_ydata()) == [0.5, 0.3, 0.35]
    assert list(best.get_xdata()) == [2, 2] and best.get_label() == "best epoch (2)"
    assert list(accuracy_axes.get_lines()[1].get_ydata()) == [0.5, 0.7, 0.65]
    assert png_bytes(figure).startswith(b"\x89PNG")


def test_training_curves_shade_the_averaged_epochs_instead() -> None:
    history = [record(epoch, 0.5 / epoch, 0.6 / epoch) for epoch in range(1, 6)]
    loss_axes, _ = training_curves_figure(history, best_epoch=5, averaged_epochs=2).axes
    assert len(loss_axes.get_lines()) == 2  # train and val; no best-epoch line
    (span,) = loss_axes.patches
    assert span.get_label() == "weights averaged (4-5)"
    assert (span.get_x(), span.get_x() + span.get_width()) == (3.5, 5.5)


def test_confusion_matrix_shows_counts_and_shares() -> None:
    figure = confusion_matrix_figure(tn=90, fp=10, fn=5, tp=15, title="patient 105, test")
    axes = figure.axes[0]
    texts = [text.get_text() for text in axes.texts]
    assert texts == ["90\n90.0%", "10\n10.0%", "5\n25.0%", "15\n75.0%"]
    assert axes.get_title() == "patient 105, test"
    assert [label.get_text() for label in axes.get_xticklabels()] == ["normal", "abnormal"]
    assert png_bytes(figure).startswith(b"\x89PNG")


def test_confusion_matrix_without_abnormal_windows_renders() -> None:
    figure = confusion_matrix_figure(tn=4, fp=0, fn=0, tp=0)
    assert [t.get_text() for t in figure.axes[0].texts][2:] == ["0\n0.0%", "0\n0.0%"]
    assert png_bytes(figure)
