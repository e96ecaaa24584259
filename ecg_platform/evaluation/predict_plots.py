"""The figure of a prediction, readable at a glance: the most suspicious 10-second strips of the
ECG with the flagged windows shaded or the flagged beats marked by class, and for longer
recordings the abnormal burden per minute."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ecg_platform.engine.prediction import Prediction, Table
from ecg_platform.evaluation.plots import agg_figure

STRIP_S = 10.0
FLAG_COLOUR, BEAT_COLOUR = "tab:red", "tab:blue"
# a flagged beat's mark by its predicted class (the normal class keeps BEAT_COLOUR)
CLASS_COLOURS = {"S": "tab:orange", "V": "tab:red", "F": "tab:purple", "Q": "tab:brown"}


def prediction_figure(
    signal: np.ndarray, fs: float, prediction: Prediction, title: str, strips: int = 3
) -> Figure:
    """`strips` 10-s strips with the highest summed abnormal probability (in time order); below
    them, for recordings over a minute, the share of abnormal windows or beats per minute."""
    chosen = suspicious_strips(
        prediction.times, prediction.abnormal_probability, prediction.offset_s, strips
    )
    per_minute = signal.size / fs > 60
    figure = agg_figure(12, 2.1 * len(chosen) + (2.4 if per_minute else 0) + 0.5)
    heights = [2.0] * len(chosen) + ([2.2] if per_minute else [])
    axes = figure.subplots(len(heights), 1, gridspec_kw={"height_ratios": heights}, squeeze=False)
    for ax, start in zip(axes[:, 0], chosen, strict=False):
        _strip(ax, signal, fs, prediction, start)
    if per_minute:
        _burden(axes[-1, 0], prediction)
    figure.suptitle(title)
    return figure


def suspicious_strips(
    times: np.ndarray, probability: np.ndarray, origin: float, count: int
) -> list[float]:
    """Start times of the `count` 10-s strips (on a 10-s grid from `origin`, the recording's
    start) of highest summed probability of the rows at `times`."""
    block = ((times - origin) // STRIP_S).astype(np.int64)
    score = np.bincount(block, weights=probability)
    best = np.sort(np.argsort(-score, kind="stable")[:count])
    return [float(origin + index * STRIP_S) for index in best]


def _strip(ax: Axes, signal: np.ndarray, fs: float, prediction: Prediction, start: float) -> None:
    """One 10-s strip: the trace, then the window model's shaded windows and beat marks, or the
    beat model's marks by class."""
    first = round((start - prediction.offset_s) * fs)
    last = min(first + round(STRIP_S * fs), signal.size)
    time = prediction.offset_s + np.arange(first, last) / fs
    ax.plot(time, signal[first:last], color="black", linewidth=0.7)
    low, high = signal[first:last].min(), signal[first:last].max()
    row = high + 0.12 * (high - low)  # the beat marks run in a row above the trace
    inside = (prediction.times >= start - 1e-9) & (prediction.times < start + STRIP_S)
    if prediction.beats is not None:
        _window_marks(ax, prediction, prediction.beats, inside, start, row)
    else:
        _beat_marks(ax, prediction, inside, row)
    n_flagged = int(np.count_nonzero(prediction.flagged[inside]))
    ax.set(
        xlim=(start, start + STRIP_S),
        ylim=(low - 0.05 * (high - low), row + 0.15 * (high - low)),
        ylabel="mV",
    )
    ax.set_title(
        f"{start:.0f}-{start + STRIP_S:.0f} s: {n_flagged} abnormal {prediction.unit}(s)",
        loc="left",
    )
    ax.grid(alpha=0.3)
    columns = 2 if prediction.beats is not None else len(prediction.classes)
    ax.legend(loc="lower right", fontsize="small", ncols=columns)


def _window_marks(
    ax: Axes, prediction: Prediction, beats: Table, inside: np.ndarray, start: float, row: float
) -> None:
    """Flagged windows shaded (darker = more probable); every beat marked, red in such a window."""
    windows = prediction.rows
    for begin, end, probability, flagged in zip(
        windows["start_s"][inside],
        windows["end_s"][inside],
        windows["probability_abnormal"][inside],
        prediction.flagged[inside],
        strict=True,
    ):
        if flagged:
            ax.axvspan(begin, end, color=FLAG_COLOUR, alpha=0.15 + 0.25 * probability, lw=0)
    on = (beats["time_s"] >= start) & (beats["time_s"] < start + STRIP_S)
    in_flagged = beats["predicted"][on] == prediction.classes[1]
    for mask, colour, name in (
        (~in_flagged, BEAT_COLOUR, "beat"),
        (in_flagged, FLAG_COLOUR, "beat in an abnormal window"),
    ):
        times = beats["time_s"][on][mask]
        ax.plot(times, np.full(times.size, row), "v", color=colour, ms=6, label=name)


def _beat_marks(ax: Axes, prediction: Prediction, inside: np.ndarray, row: float) -> None:
    """Each beat marked in its predicted class's colour; flagged beats bigger, with the class
    written above them."""
    times, predicted = prediction.times[inside], prediction.rows["predicted"][inside]
    for name in prediction.classes:
        at = times[predicted == name]
        normal = name == prediction.classes[0]
        colour = BEAT_COLOUR if normal else CLASS_COLOURS.get(name, FLAG_COLOUR)
        ax.plot(at, np.full(at.size, row), "v", color=colour, ms=6 if normal else 8, label=name)
        if not normal:
            for time in at:
                ax.annotate(name, (time, row), (0, 5), textcoords="offset points", ha="center")


def _burden(ax: Axes, prediction: Prediction) -> None:
    """Share of abnormal windows or beats per minute, as bars (a minute without any: none)."""
    minute = ((prediction.times - prediction.offset_s) // 60).astype(np.int64)
    count = np.bincount(minute)
    flagged = np.bincount(minute, weights=prediction.flagged.astype(float))
    share = 100 * np.divide(flagged, count, out=np.zeros(count.size), where=count > 0)
    ax.bar(np.arange(share.size), share, width=0.9, color=FLAG_COLOUR)
    ax.set(xlabel="minute", ylabel=f"abnormal {prediction.unit}s (%)", ylim=(0, 100))
    ax.set_title("abnormal burden per minute", loc="left")
    ax.grid(alpha=0.3, axis="y")
