"""ecg-platform: MLflow-tracked PyTorch platform for patient-specific ECG beat classification."""
