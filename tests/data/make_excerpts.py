"""Cut the test excerpts in tests/data/mitdb from the full records (run from the repo root).

Each excerpt is the first minutes of channel 0 of a real MIT-BIH record, digital samples unchanged,
written in the original WFDB format 212, with the reference annotations of the same span.
"""

from __future__ import annotations

from pathlib import Path

import wfdb

SOURCE = Path("../shared/data/mitdb")
TARGET = Path(__file__).parent / "mitdb"
EXCERPT_MINUTES = {"119": 5, "208": 5, "233": 5, "222": 2}


def cut_excerpt(record: str, minutes: int) -> None:
    """Write the first `minutes` of `record` (signal and annotations) into TARGET."""
    stem = str(SOURCE / record)
    header = wfdb.rdheader(stem)
    sampto = int(minutes * 60 * header.fs)
    signal = wfdb.rdrecord(stem, sampto=sampto, channels=[0], physical=False)
    wfdb.wrsamp(
        record,
        fs=signal.fs,
        units=signal.units,
        sig_name=signal.sig_name,
        d_signal=signal.d_signal,
        fmt=["212"],
        adc_gain=signal.adc_gain,
        baseline=signal.baseline,
        comments=signal.comments,
        write_dir=str(TARGET),
    )
    ann = wfdb.rdann(stem, "atr", sampto=sampto)
    wfdb.wrann(
        record,
        "atr",
        ann.sample,
        symbol=ann.symbol,
        subtype=ann.subtype,
        chan=ann.chan,
        num=ann.num,
        aux_note=ann.aux_note,
        fs=ann.fs,
        write_dir=str(TARGET),
    )


def main() -> None:
    """Cut every excerpt and write the RECORDS list."""
    TARGET.mkdir(parents=True, exist_ok=True)
    for record, minutes in EXCERPT_MINUTES.items():
        cut_excerpt(record, minutes)
    (TARGET / "RECORDS").write_text("".join(f"{r}\n" for r in sorted(EXCERPT_MINUTES)))


if __name__ == "__main__":
    main()
