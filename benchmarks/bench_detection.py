"""QRS detection quality and speed on the 44 non-paced MIT-BIH records: per record and pooled
(gross) sensitivity and positive predictivity of `wfdb.processing`'s detectors against the
`.atr` beats, matching window 150 ms (ANSI/AAMI EC57), whole records, channel 0.

Run from the repository root:
`.venv/bin/python benchmarks/bench_detection.py [--detectors gqrs,xqrs] [--records 100,101]`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ecg_platform.data.protocols import NON_PACED
from ecg_platform.data.qrs import annotated_beats, detect_beats
from ecg_platform.data.signal_input import read_wfdb
from ecg_platform.evaluation.detection import DetectionCounts, detection_counts


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
    print("| record | beats | " + " | ".join(f"{d} Se | {d} +P | {d} s" for d in detectors) + " |")
    print("|---|---:|" + "---:|---:|---:|" * len(detectors))
    for record in records:
        recording = read_wfdb(Path(args.data_dir) / record)
        reference = annotated_beats(recording)
        cells = []
        for name in detectors:
            started = time.perf_counter()
            detected = detect_beats(recording.signal, recording.fs, name)
            elapsed = time.perf_counter() - started
            counts = detection_counts(reference, detected, recording.fs)
            totals[name] += counts
            seconds[name] += elapsed
            cells.append(
                f"{counts.sensitivity:.2%} | {counts.positive_predictivity:.2%} | {elapsed:.2f}"
            )
        print(f"| {record} | {reference.size} | " + " | ".join(cells) + " |", flush=True)
    pooled = [
        f"**{totals[d].sensitivity:.2%}** | **{totals[d].positive_predictivity:.2%}** | "
        f"{seconds[d]:.0f}"
        for d in detectors
    ]
    beats = totals[detectors[0]].tp + totals[detectors[0]].fn
    print(f"| gross ({len(records)} records) | {beats} | " + " | ".join(pooled) + " |")
    for name in detectors:
        t = totals[name]
        print(f"{name}: TP {t.tp}, FN {t.fn}, FP {t.fp}, {seconds[name]:.0f} s in all")


if __name__ == "__main__":
    main()
