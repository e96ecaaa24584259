"""The code MLflow runs to load the served pipeline ("models from code"; see pipeline_model)."""

import mlflow

from ecg_platform.tracking.pipeline_model import EcgPipelineModel

mlflow.models.set_model(EcgPipelineModel())
