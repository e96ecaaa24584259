"""MIT-BIH records to the study's windows, labels, splits and tensors (no models, no MLflow)."""
