"""QRS detection quality and speed on the 44 non-paced MIT-BIH records: per record and pooled
(gross) sensitivity and positive predictivity of `wfdb.processing`'s detectors against the
`.atr` beats, matching window 150 ms (ANSI/AAMI EC57), whole records, channel 0; and the median
offset of the matched detections to the `.atr` sample (ms; negative: before it), the R peak
that the beat models' windows are centred on.

Run from the repository root:
`.venv/bin/python benchmarks/bench_detection.py [--detectors gqrs,xqrs] [--records 100,101]`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from entry import run_main

from ecg_platform.data.protocols import NON_PACED
from ecg_platform.data.qrs import annotated_beats, detect_beats
from ecg_platform.data.signal_input import read_wfdb
from ecg_platform.evaluation.detection import DetectionCounts, detection_counts, matched_offsets

CLOSE_MS = 1000 * 3 / 360  # 3 samples of MIT-BIH's 360 Hz


def main() -> None:
    """Detect, compare and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", default="../shared/data/mitdb")
    parser.add_argument("--detectors", default="gqrs,xqrs")
    parser.add_argument("--records", default=",".join(NON_PACED))
    args = parser.parse_args()
    detectors, records = args.detectors.split(","), args.records.split(",")
    totals = {name: DetectionCounts(0, 0, 0) for name in detectors}
    seconds = dict.fromkeys(detectors, 0.0)
    offsets_ms: dict[str, list[np.ndarray]] = {name: [] for name in detectors}
    print(
        "| record | beats | "
        + " | ".join(f"{d} Se | {d} +P | {d} offset ms | {d} s" for d in detectors)
        + " |"
    )
    print("|---|---:|" + "---:|---:|---:|---:|" * len(detectors))
    for record in records:
        recording = read_wfdb(Path(args.data_dir) / record)
        reference = annotated_beats(recording)
        cells = []
        for name in detectors:
            started = time.perf_counter()
            detected = detect_beats(recording.signal, recording.fs, name)
            elapsed = time.perf_counter() - started
            counts = detection_counts(reference, detected, recording.fs)
            offset = 1000 * matched_offsets(reference, detected, recording.fs) / recording.fs
            totals[name] += counts
            seconds[name] += elapsed
            offsets_ms[name].append(offset)
            cells.append(
                f"{counts.sensitivity:.2%} | {counts.positive_predictivity:.2%} | "
                f"{np.median(offset):+.1f} | {elapsed:.2f}"
            )
        print(f"| {record} | {reference.size} | " + " | ".join(cells) + " |", flush=True)
    pooled_ms = {name: np.concatenate(offsets_ms[name]) for name in detectors}
    pooled = [
        f"**{totals[d].sensitivity:.2%}** | **{totals[d].positive_predictivity:.2%}** | "
        f"**{np.median(pooled_ms[d]):+.1f}** | {seconds[d]:.0f}"
        for d in detectors
    ]
    beats = totals[detectors[0]].tp + totals[detectors[0]].fn
    print(f"| gross ({len(records)} records) | {beats} | " + " | ".join(pooled) + " |")
    for name in detectors:
        t = totals[name]
        low, high = np.percentile(pooled_ms[name], [10, 90])
        within = np.mean(np.abs(pooled_ms[name]) <= CLOSE_MS)
        print(
            f"{name}: TP {t.tp}, FN {t.fn}, FP {t.fp}, {seconds[name]:.0f} s in all; offset to "
            f"the .atr median {np.median(pooled_ms[name]):+.1f} ms, 10th-90th percentile "
            f"{low:+.1f} to {high:+.1f} ms, {within:.1%} within {CLOSE_MS:.1f} ms"
        )


if __name__ == "__main__":
    run_main(main)
