"""Beat label sets: AAMI EC57 classes from WFDB annotation symbols, and the binary N-vs-rest set.

Beats are stored by AAMI class index; a label set is applied when a trainer asks for labels, so
one cached extraction serves every label set.
"""

from __future__ import annotations

import numpy as np

from ecg_platform.errors import EcgPlatformError

AAMI_CLASSES = ("N", "S", "V", "F", "Q")
AAMI_SYMBOLS: dict[str, tuple[str, ...]] = {
    "N": ("N", "L", "R", "e", "j"),
    "S": ("A", "a", "J", "S"),
    "V": ("V", "E"),
    "F": ("F",),
    "Q": ("/", "f", "Q"),
}
NOT_A_BEAT = -1
LABEL_SETS: dict[str, tuple[str, ...]] = {
    "aami": AAMI_CLASSES,
    "binary": ("normal", "abnormal"),  # AAMI N vs S, V, F and Q
}

_CLASS_OF_SYMBOL = {
    symbol: AAMI_CLASSES.index(name) for name, symbols in AAMI_SYMBOLS.items() for symbol in symbols
}


def aami_classes(symbols: np.ndarray) -> np.ndarray:
    """AAMI class index (int64) of each annotation symbol; NOT_A_BEAT for rhythm, noise etc."""
    unique, inverse = np.unique(np.asarray(symbols, dtype=str), return_inverse=True)
    lookup = np.array([_CLASS_OF_SYMBOL.get(symbol, NOT_A_BEAT) for symbol in unique], np.int64)
    return lookup[inverse.reshape(-1)]


def annotated_beat_classes(
    samples: np.ndarray, symbols: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The beats among annotations: their samples in time order (stable) and AAMI classes; the
    one reading of an `.atr` that training, prediction and its reference column share."""
    classes = aami_classes(symbols)
    is_beat = classes != NOT_A_BEAT
    order = np.argsort(samples[is_beat], kind="stable")
    return samples[is_beat][order], classes[is_beat][order]


def check_label_set(label_set: str) -> None:
    """A one-line error naming the known label sets."""
    if label_set not in LABEL_SETS:
        known = ", ".join(LABEL_SETS)
        raise EcgPlatformError(f"unknown label set {label_set!r}; known label sets: {known}")


def apply_label_set(aami: np.ndarray, label_set: str) -> np.ndarray:
    """Class labels (int64) of AAMI class indices under `label_set` ("aami" or "binary")."""
    check_label_set(label_set)
    if label_set == "binary":
        return (aami != AAMI_CLASSES.index("N")).astype(np.int64)
    return aami.astype(np.int64)


def class_counts(aami: np.ndarray) -> dict[str, int]:
    """Beats per AAMI class, e.g. {"N": 1500, "S": 3, "V": 0, "F": 0, "Q": 0}."""
    counts = np.bincount(aami, minlength=len(AAMI_CLASSES))
    return {name: int(count) for name, count in zip(AAMI_CLASSES, counts, strict=True)}
