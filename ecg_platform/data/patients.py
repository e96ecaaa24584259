"""Which patients a command asks for, parsed once at the edge from "all", "105" or "105,106"."""

from __future__ import annotations

from dataclasses import dataclass

from ecg_platform.errors import EcgPlatformError

ALL_PATIENTS = "all"


@dataclass(frozen=True)
class PatientSelection:
    """Every selected record (`ids` None), or these record ids in the order given."""

    ids: tuple[str, ...] | None = None

    @classmethod
    def parse(cls, text: str) -> PatientSelection:
        """`all`, one id or a comma list; blanks are dropped and a repeated id counts once, so
        `105,,105` trains 105 once."""
        if text.strip() == ALL_PATIENTS:
            return cls()
        ids = tuple(dict.fromkeys(item.strip() for item in text.split(",") if item.strip()))
        if not ids:
            raise EcgPlatformError(
                f"no patient given: one id (105), a list (105,106) or {ALL_PATIENTS}"
            )
        return cls(ids)

    @property
    def label(self) -> str:
        """`all` or the ids joined by commas: the runs' `patient` tag and name."""
        return ALL_PATIENTS if self.ids is None else ",".join(self.ids)

    @property
    def several(self) -> bool:
        """More than one patient may be chosen: one nested run per patient under a parent."""
        return self.ids is None or len(self.ids) > 1


EVERY_PATIENT = PatientSelection()
