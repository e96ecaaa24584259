"""The model registry: register a run's model, move `champion` to the best, resolve model URIs."""

from __future__ import annotations

import contextlib
import io
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from ecg_platform.errors import EcgPlatformError
from ecg_platform.tracking.collisions import MAX_COLLISIONS, is_collision
from ecg_platform.tracking.schema import DATA_HASH_TAG, SELECTION_METRIC, TRACKING, model_family

if TYPE_CHECKING:
    from ecg_platform.data.config import ProtocolConfig

_ALIAS_URI = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[^/]+)$")
_VERSION_URI = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)$")
_LOADABLE_SCHEMES = ("models", "runs", "file", "")
_RUN_URI = re.compile(r"^runs:/(?P<run_id>[^/]+)(/.*)?$")
_NOT_FOUND = ("RESOURCE_DOES_NOT_EXIST",)
_ALIAS_NOT_FOUND = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")
_T = TypeVar("_T")
NO_PRETRAINED = (
    "no pretrained model yet: run `mlflow run . -e pretrain` (or `ecg-platform pretrain`) first"
)
_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSource:
    """Where weights come from: the exact URI, its registry version and run where known."""

    uri: str
    name: str | None = None
    version: str | None = None
    run_id: str | None = None
    data_config_hash: str | None = None


def register_model(
    model_uri: str, name: str, tags: dict[str, str | float], description: str = ""
) -> str:
    """Register `model_uri` as a new version of `name` with `tags` and `description`; returns
    the version. MLflow's two lines per registration go to this module's debug log."""
    string_tags = {key: str(value) for key, value in tags.items()}
    chatter = io.StringIO()
    with contextlib.redirect_stderr(chatter):
        version = str(mlflow.register_model(model_uri, name, tags=string_tags).version)
    _logger.debug(chatter.getvalue().strip())
    if description:
        MlflowClient().update_model_version(name, version, description=description)
    return version


def promote_if_better(name: str, version: str) -> bool:
    """Point `champion` at the version of lowest validation loss (its `val_loss` tag, so at
    `version` when it beats the current champion's); True when `version` is the champion now.

    Safe under concurrency without a lock: after every move the versions are read again, so a
    process that overwrote a better champion with a stale choice puts the better one back; a
    move that collided with another writer's in the store (two inserts of the same alias, seen
    on PostgreSQL) is simply decided again.
    """
    client = MlflowClient()
    collisions = 0
    while True:
        champion = _version_by_alias(client, name, TRACKING.champion_alias)
        best = min(
            client.search_model_versions(f"name = '{name}'"),
            key=lambda found: (_selection_value(found), int(found.version)),
        )
        if champion is not None and _selection_value(champion) <= _selection_value(best):
            return str(champion.version) == version
        try:
            client.set_registered_model_alias(name, TRACKING.champion_alias, str(best.version))
        except MlflowException as error:
            collisions += 1
            if collisions > MAX_COLLISIONS or not is_collision(error):
                raise


def _selection_value(found: ModelVersion) -> float:
    """A version's validation loss (its tag); a version without one never wins."""
    return float(found.tags.get(SELECTION_METRIC, math.inf))


def champion_version(name: str) -> str | None:
    """The version `champion` points at, or None (no such model or alias)."""
    champion = _version_by_alias(MlflowClient(), name, TRACKING.champion_alias)
    return None if champion is None else str(champion.version)


def resolve_model_source(uri: str) -> ModelSource | None:
    """Pin `uri` to an exact source; None when it names a registry entry that does not exist.

    `models:/name@alias` and `models:/name/version` resolve to `models:/name/version`; for
    these and `runs:/...` the data-config hash comes from the version's or the run's tags.
    """
    _check_uri_form(uri)
    client = MlflowClient()
    if match := _ALIAS_URI.match(uri):
        found = _version_by_alias(client, match["name"], match["alias"])
        return None if found is None else _source_of_version(found)
    if match := _VERSION_URI.match(uri):
        found = _get_or_none(client.get_model_version, match["name"], match["version"])
        return None if found is None else _source_of_version(found)
    if match := _RUN_URI.match(uri):
        run = _get_or_none(client.get_run, match["run_id"])
        if run is None:
            return None
        data_hash = run.data.tags.get(DATA_HASH_TAG)
        return ModelSource(uri, run_id=run.info.run_id, data_config_hash=data_hash)
    return ModelSource(uri)


def existing_model_source(uri: str, missing: str | None = None) -> ModelSource:
    """`resolve_model_source`, with a one-line error (`missing`, else "no model at") when the
    entry or run is not there: the check a command makes before it imports torch and the
    pipeline (seconds) to load it."""
    source = resolve_model_source(uri)
    if source is None:
        raise EcgPlatformError(missing or f"no model at {uri}: check its name and version or alias")
    return source


def pretrained_source(uri: str, data: ProtocolConfig, force: bool) -> ModelSource:
    """The exact pretrained model behind `uri`, checked against the data config of the run
    that will start from it: a model pretrained on other windows may have seen its test ones."""
    first = uri == TRACKING.pretrained_champion_uri(model_family(data))
    source = existing_model_source(uri, NO_PRETRAINED if first else None)
    if source.data_config_hash != data.hash() and not force:
        raise EcgPlatformError(
            f"pretrained model {source.uri} was trained under data config "
            f"{source.data_config_hash or '(unknown)'} but this run uses {data.hash()} (preset "
            f"{data.preset!r}, seed {data.seed}); its training windows may include this "
            "run's test windows. Pretrain with the same settings, or pass --force"
        )
    return source


def default_model_uri(patient: str, data: ProtocolConfig) -> str:
    """The patient's fine-tuned champion of `data`'s model family, e.g.
    `models:/ecg-finetuned-233@champion` (paper) or `...-233-patient-specific@champion`."""
    name = TRACKING.registered_model("finetune", patient, model_family(data))
    return f"models:/{name}@{TRACKING.champion_alias}"


def _check_uri_form(uri: str) -> None:
    """A one-line error for what no lookup can resolve: a malformed `models:/` URI, a scheme the
    platform does not load from, a local path that does not exist."""
    scheme = urlsplit(uri).scheme
    if scheme == "models" and not (_ALIAS_URI.match(uri) or _VERSION_URI.match(uri)):
        raise EcgPlatformError(
            f"malformed model URI {uri!r}: use models:/NAME/VERSION or models:/NAME@ALIAS"
        )
    if scheme not in _LOADABLE_SCHEMES:
        raise EcgPlatformError(
            f"cannot load a model from {uri!r}: use models:/..., runs:/..., or a local path"
        )
    if scheme in ("", "file") and not Path(urlsplit(uri).path if scheme else uri).exists():
        raise EcgPlatformError(f"no file or folder at {uri}")


def _source_of_version(found: ModelVersion) -> ModelSource:
    return ModelSource(
        uri=f"models:/{found.name}/{found.version}",
        name=found.name,
        version=str(found.version),
        run_id=found.run_id,
        data_config_hash=found.tags.get(DATA_HASH_TAG),
    )


def _version_by_alias(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    return _get_or_none(client.get_model_version_by_alias, name, alias, missing=_ALIAS_NOT_FOUND)


def _get_or_none(
    getter: Callable[..., _T], *args: str, missing: tuple[str, ...] = _NOT_FOUND
) -> _T | None:
    """`getter(*args)`, or None when MLflow answers with one of the `missing` error codes."""
    try:
        return getter(*args)
    except MlflowException as exc:
        if exc.error_code in missing:
            return None
        raise
