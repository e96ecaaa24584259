"""The figure of a prediction, readable at a glance: the most suspicious 10-second strips of the
ECG with the flagged windows shaded and the beats marked, and for longer recordings the
abnormal burden per minute."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ecg_platform.evaluation.plots import agg_figure

STRIP_S = 10.0
FLAG_COLOUR, BEAT_COLOUR = "tab:red", "tab:blue"


def prediction_figure(
    signal: np.ndarray,
    fs: float,
    windows: Mapping[str, np.ndarray],
    beats: Mapping[str, np.ndarray],
    title: str,
    strips: int = 3,
) -> Figure:
    """`strips` 10-s strips with the highest summed abnormal probability (in time order); below
    them, for recordings over a minute, the share of abnormal windows per minute."""
    offset = float(windows["start_s"][0])
    chosen = suspicious_strips(windows, strips)
    per_minute = signal.size / fs > 60
    figure = agg_figure(12, 2.1 * len(chosen) + (2.4 if per_minute else 0) + 0.5)
    heights = [2.0] * len(chosen) + ([2.2] if per_minute else [])
    axes = figure.subplots(len(heights), 1, gridspec_kw={"height_ratios": heights}, squeeze=False)
    for ax, start in zip(axes[:, 0], chosen, strict=False):
        _strip(ax, signal, fs, offset, windows, beats, start)
    if per_minute:
        _burden(axes[-1, 0], windows)
    figure.suptitle(title)
    return figure


def suspicious_strips(windows: Mapping[str, np.ndarray], count: int) -> list[float]:
    """Start times of the `count` 10-s strips (on a 10-s grid) of highest summed probability."""
    start = windows["start_s"]
    block = ((start - start[0]) // STRIP_S).astype(np.int64)
    score = np.bincount(block, weights=windows["probability_abnormal"])
    best = np.sort(np.argsort(-score, kind="stable")[:count])
    return [float(start[0] + index * STRIP_S) for index in best]


def _strip(
    ax: Axes,
    signal: np.ndarray,
    fs: float,
    offset: float,
    windows: Mapping[str, np.ndarray],
    beats: Mapping[str, np.ndarray],
    start: float,
) -> None:
    """One 10-s strip: the trace, flagged windows shaded (darker = more probable), beat marks."""
    first = round((start - offset) * fs)
    last = min(first + round(STRIP_S * fs), signal.size)
    time = offset + np.arange(first, last) / fs
    ax.plot(time, signal[first:last], color="black", linewidth=0.7)
    inside = (windows["start_s"] >= start - 1e-9) & (windows["start_s"] < start + STRIP_S)
    for begin, end, probability, label in zip(
        windows["start_s"][inside],
        windows["end_s"][inside],
        windows["probability_abnormal"][inside],
        windows["predicted"][inside],
        strict=True,
    ):
        if label == "abnormal":
            ax.axvspan(begin, end, color=FLAG_COLOUR, alpha=0.15 + 0.25 * probability, lw=0)
    on = (beats["time_s"] >= start) & (beats["time_s"] < start + STRIP_S)
    low, high = signal[first:last].min(), signal[first:last].max()
    row = high + 0.12 * (high - low)  # the beat marks run in a row above the trace
    flagged = beats["predicted"][on] == "abnormal"
    for mask, colour, name in (
        (~flagged, BEAT_COLOUR, "beat"),
        (flagged, FLAG_COLOUR, "beat in an abnormal window"),
    ):
        times = beats["time_s"][on][mask]
        ax.plot(times, np.full(times.size, row), "v", color=colour, ms=6, label=name)
    n_flagged = int(np.count_nonzero(windows["predicted"][inside] == "abnormal"))
    ax.set(
        xlim=(start, start + STRIP_S),
        ylim=(low - 0.05 * (high - low), row + 0.15 * (high - low)),
        ylabel="mV",
    )
    ax.set_title(f"{start:.0f}-{start + STRIP_S:.0f} s: {n_flagged} abnormal window(s)", loc="left")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small", ncols=2)


def _burden(ax: Axes, windows: Mapping[str, np.ndarray]) -> None:
    """Share of abnormal windows per minute, as bars."""
    minute = ((windows["start_s"] - windows["start_s"][0]) // 60).astype(np.int64)
    abnormal = (windows["predicted"] == "abnormal").astype(float)
    share = 100 * np.bincount(minute, weights=abnormal) / np.bincount(minute)
    ax.bar(np.arange(share.size), share, width=0.9, color=FLAG_COLOUR)
    ax.set(xlabel="minute", ylabel="abnormal windows (%)", ylim=(0, 100))
    ax.set_title("abnormal burden per minute", loc="left")
    ax.grid(alpha=0.3, axis="y")
