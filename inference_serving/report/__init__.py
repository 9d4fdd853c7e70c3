"""Outputs of a run: metrics, the per-request CSV, plots, timelines, the progress bar, validation."""
