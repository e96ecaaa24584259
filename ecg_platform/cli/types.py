"""Click parameter types that refuse a bad value while parsing, before any data load or run."""

from __future__ import annotations

import math
from typing import Any

import click

from ecg_platform.data.patients import PatientSelection
from ecg_platform.errors import EcgPlatformError

AUTO = "auto"
MAX_SEED = 2**32 - 1  # numpy's and scikit-learn's generators take seeds of 32 bits


class WholeNumber(click.IntRange):
    """An integer range that also takes integral floats such as `2.0`: MLproject declares
    `epochs`, `seed` and the architecture as floats, so `mlflow run -P epochs=2.0` must work."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str):
            value = self._whole(value, param, ctx)
        return super().convert(value, param, ctx)

    def _whole(self, text: str, param: click.Parameter | None, ctx: click.Context | None) -> int:
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            self.fail(f"{text!r} is not a valid integer.", param, ctx)
        if not number.is_integer():
            self.fail(f"{text!r} is not a whole number.", param, ctx)
        return int(number)


class FiniteFloat(click.FloatRange):
    """A float range without NaN and infinity, which slip through a range check (every
    comparison with NaN is false) and only fail epochs later."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value} is not a finite number.", param, ctx)
        return number


POSITIVE_INT = WholeNumber(min=1)
NON_NEGATIVE_INT = WholeNumber(min=0)
SEED = WholeNumber(min=0, max=MAX_SEED)
POSITIVE_FLOAT = FiniteFloat(min=0, min_open=True)
NON_NEGATIVE_FLOAT = FiniteFloat(min=0)


class OrAuto(click.ParamType):
    """A value of `base`, or `auto` (None): chosen later, per patient or per machine."""

    def __init__(self, base: click.ParamType) -> None:
        self.base = base
        self.name = f"{base.name}|{AUTO}"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None or value == AUTO:
            return None
        return self.base.convert(value, param, ctx)


class OrEmpty(click.ParamType):
    """A value of `base`, or nothing (None) for an empty string: MLproject's `""` default."""

    def __init__(self, base: click.ParamType) -> None:
        self.base = base
        self.name = base.name

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None or value == "":
            return None
        return self.base.convert(value, param, ctx)


class CommaList(click.ParamType):
    """Comma-separated values of `base`, e.g. `4,16,32`, as a tuple."""

    def __init__(self, base: click.ParamType) -> None:
        self.base = base
        self.name = f"{base.name},..."

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, tuple):
            return value
        items = [item.strip() for item in str(value).split(",") if item.strip()]
        if not items:
            self.fail("give at least one value", param, ctx)
        return tuple(self.base.convert(item, param, ctx) for item in items)


class Patients(click.ParamType):
    """`all`, one id or a comma list, parsed once into a de-duplicated `PatientSelection`."""

    name = "patients"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, PatientSelection):
            return value
        try:
            return PatientSelection.parse(str(value))
        except EcgPlatformError as exc:
            self.fail(str(exc), param, ctx)


def listed(values: tuple[Any, ...]) -> str:
    """Values as a `CommaList` default, booleans as `true`/`false`."""
    return ",".join(
        str(value).lower() if isinstance(value, bool) else str(value) for value in values
    )


def empty_as_none(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """An empty option value (MLproject's `""` default) means: not given."""
    return value or None
