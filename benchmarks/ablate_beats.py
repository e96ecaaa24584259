"""Gross VEB/SVEB of a beat-protocol variant in about 2 minutes: the study's stages (pretrain,
then per patient the pretrained model alone and fine-tuned) through the platform's own data
layer, engine and metrics, without MLflow, one training seed, and the pretrained model on the
pooled validation beats (inter-patient: the held-out DS1 records). For trying a data or
training setting before paying for `ecg-platform reproduce --repeats 3`; one seed decides
nothing on its own (docs/results.md section 5 says by how much a seed moves these figures).

    python benchmarks/ablate_beats.py [--preset patient-specific] [--seed 42]
        [--extraction '{"percentile_scale": false}'] [--pretrain '{"weighted_sampling": false}']
        [--finetune '{"encoder_lr_scale": 0.1}'] [--model '{"block_channels": 16}'] [--individual]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
from entry import run_main

from ecg_platform.data.beat_config import BEAT_PRESETS, BeatExtraction, beat_config
from ecg_platform.data.config import resolve_cache_dir
from ecg_platform.data.loaders import TensorSplit, tensor_splits
from ecg_platform.data.protocols import DS2
from ecg_platform.data.source import DataSource
from ecg_platform.engine.config import TrainConfig
from ecg_platform.engine.inference import predict_proba
from ecg_platform.engine.runtime import seed_everything
from ecg_platform.engine.trainer import fit
from ecg_platform.errors import EcgPlatformError
from ecg_platform.evaluation.aami import RECORD_SETS, confusion, ectopic_counts, gross
from ecg_platform.evaluation.metrics import classification_metrics
from ecg_platform.models.cnn1d import load_pretrained
from ecg_platform.models.config import ModelConfig
from ecg_platform.models.protocol import Classifier
from ecg_platform.models.registry import build_model
from ecg_platform.workflows.settings import stage_defaults


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="patient-specific", choices=sorted(BEAT_PRESETS))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--extraction", default="{}", help="BeatExtraction fields, JSON")
    parser.add_argument("--pretrain", default="{}", help="pretraining TrainConfig fields, JSON")
    parser.add_argument("--finetune", default="{}", help="fine-tuning TrainConfig fields, JSON")
    parser.add_argument("--model", default="{}", help="ModelConfig fields, JSON")
    parser.add_argument(
        "--per-record", action="store_true", help="also each record's VEB/SVEB tp, fn, fp"
    )
    parser.add_argument("--individual", action="store_true", help="also train from scratch")
    args = parser.parse_args()
    config = beat_config(args.preset)
    extraction = dataclasses.replace(
        config.extraction, **_fields("--extraction", args.extraction, BeatExtraction)
    )
    config = dataclasses.replace(config, extraction=extraction)
    seed = {"seed": args.seed}
    pretraining = _fields("--pretrain", args.pretrain, TrainConfig)
    pretrain = stage_defaults("pretrain", config).replace(**seed, **pretraining)
    finetuning = _fields("--finetune", args.finetune, TrainConfig)
    finetune = stage_defaults("finetune").replace(**seed, **finetuning)
    study = DataSource.resolve(config, args.data_dir, resolve_cache_dir()).load()
    inter_patient = config.protocol == "inter-patient"
    patients = list(DS2) if inter_patient else study.selected
    record_sets = {"DS2": DS2} if inter_patient else RECORD_SETS
    classes = len(config.class_names)
    model_config = ModelConfig(
        num_outputs=classes,
        extra_features=config.side_features,
        **_fields("--model", args.model, ModelConfig),
    )

    def new_model() -> Classifier:
        seed_everything(args.seed)
        return build_model(model_config, config.input_length)

    def trained(
        model: Classifier,
        splits: Mapping[str, TensorSplit],
        train: TrainConfig,
        progress: bool = False,
    ) -> Classifier:
        fit(
            model,
            splits["train"],
            splits["val"],
            train,
            progress=progress,
            metrics=classification_metrics,
        )
        return model

    started = time.perf_counter()
    pooled = tensor_splits(study.split_arrays(patients), "cpu")
    generic = trained(new_model(), pooled, pretrain, progress=True)  # on stderr: the long part
    print(f"pretraining: {time.perf_counter() - started:.0f} s", flush=True)
    # inter-patient: the held-out DS1 records; patient-specific: the first minutes' 20%
    validation_matrix = confusion_of(generic, pooled["val"], classes)
    weights = {name: tensor.clone() for name, tensor in generic.state_dict().items()}
    matrices: dict[str, dict[str, np.ndarray]] = {"generic": {}, "finetune": {}}
    matrices |= {"individual": {}} if args.individual else {}
    for patient in patients:
        splits = tensor_splits(study.split_arrays([patient]), "cpu")
        fine = new_model()
        load_pretrained(fine, weights)
        models = {"generic": generic, "finetune": trained(fine, splits, finetune)}
        if args.individual:
            models["individual"] = trained(
                new_model(), splits, stage_defaults("individual").replace(**seed)
            )
        for arm, model in models.items():
            matrices[arm][patient] = confusion_of(model, splits["test"], classes)
    print(f"all stages: {time.perf_counter() - started:.0f} s, seed {args.seed}")
    print(f"{'arm':<11}{'records':<8}  VEB Se   +P   F1 | SVEB Se   +P   F1")
    for arm, by_patient in matrices.items():
        for name, records in record_sets.items():
            found = gross([by_patient[r] for r in records if r in by_patient], config.class_names)
            print(f"{arm:<11}{name:<8}  {figures(found)}")
    print(f"{'generic':<11}{'val':<8}  {figures(gross([validation_matrix], config.class_names))}")
    if args.per_record:
        print(f"{'arm':<11}{'record':<8}  VEB tp   fn   fp | SVEB tp   fn   fp")
        for arm, by_patient in matrices.items():
            for record, matrix in by_patient.items():
                counts = ectopic_counts(matrix, config.class_names)
                veb, sveb = (
                    " ".join(f"{getattr(counts[task], n):4d}" for n in ("tp", "fn", "fp"))
                    for task in ("VEB", "SVEB")
                )
                print(f"{arm:<11}{record:<8}  {veb} |      {sveb}")


def confusion_of(model: Classifier, split: TensorSplit, classes: int) -> np.ndarray:
    probabilities = predict_proba(model, split.x, split.features)
    predicted = probabilities.argmax(1) if classes > 2 else probabilities >= 0.5
    return confusion(split.y.numpy(), predicted.astype(int), classes)


def figures(found: Mapping[str, Mapping[str, float]]) -> str:
    veb, sveb = (
        " ".join(f"{100 * found[task][m]:4.1f}" for m in ("se", "ppv", "f1"))
        for task in ("VEB", "SVEB")
    )
    return f"{veb} |      {sveb}"


def _fields(option: str, text: str, config: type) -> dict[str, Any]:
    """The JSON object of `option`, whose keys must be fields of the dataclass `config`."""
    try:
        fields = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EcgPlatformError(f"{option} is no JSON object: {exc}") from None
    if not isinstance(fields, dict):
        raise EcgPlatformError(f"{option} must be a JSON object, got {text}")
    known = {field.name for field in dataclasses.fields(config)}
    if unknown := sorted(set(fields) - known):
        raise EcgPlatformError(
            f"{option}: no field {', '.join(unknown)} in {config.__name__}; "
            f"known: {', '.join(sorted(known))}"
        )
    return fields


if __name__ == "__main__":
    run_main(main)
