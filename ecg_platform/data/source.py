"""The data a command reads: its directory, cache and protocol, resolved once at the edge."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Union

from ecg_platform.data.beat_config import BeatConfig
from ecg_platform.data.config import ProtocolConfig, resolve_cache_dir
from ecg_platform.data.dataset import StudyData, load_study
from ecg_platform.data.mitdb import check_records, resolve_data_dir
from ecg_platform.data.patients import PatientSelection
from ecg_platform.data.protocols import select_patients

if TYPE_CHECKING:
    from ecg_platform.data.beat_dataset import BeatStudy

Study = Union[StudyData, "BeatStudy"]  # both: `select`, `split_arrays`, `selected`


@dataclass(frozen=True)
class DataSource:
    """Resolved paths and the data config; everything below the CLI loads through this, so
    `--data-dir`, `$ECG_DATA_DIR` and the defaults are looked up in one place only."""

    data_dir: Path
    cache_dir: Path
    config: ProtocolConfig

    @classmethod
    def resolve(
        cls,
        config: ProtocolConfig,
        data_dir: str | os.PathLike[str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> DataSource:
        """The option, else its environment variable, else the default (one-line error when no
        records are found)."""
        return cls(resolve_data_dir(data_dir), resolve_cache_dir(cache_dir), config)

    def check_patients(self, patients: PatientSelection) -> None:
        """Ids that no stage could train on fail here, in one line, before MLflow, torch and
        the data load: outside a beat protocol's patients, or (`paper`) not in the data
        directory; whether a record passes the study's selection needs its windows, so
        `StudyData.select` says that later."""
        if patients.ids is None:
            return
        if isinstance(self.config, BeatConfig):
            select_patients(self.config, patients)
        else:
            check_records(self.data_dir, patients.ids)

    def load(self, records: Sequence[str] | None = None, progress: bool = True) -> Study:
        """The records (default: every one in the directory) preprocessed, from the cache when
        it is current: the study's windows, or a beat protocol's beats (always every record:
        the protocol decides which it uses)."""
        if isinstance(self.config, BeatConfig):
            from ecg_platform.data.beat_dataset import load_beat_study  # scipy: built on demand

            return load_beat_study(self.data_dir, self.config, self.cache_dir)
        return load_study(self.data_dir, self.config, records, self.cache_dir, progress)
