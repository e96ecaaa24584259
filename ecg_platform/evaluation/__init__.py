"""Metrics, figures and the comparison report."""
