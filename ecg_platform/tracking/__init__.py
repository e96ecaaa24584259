"""Everything that speaks MLflow: runs, the logging callback, the model registry."""
