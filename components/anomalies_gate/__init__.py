"""AnomaliesGate: fails the run on schema anomalies or drift of the new span, before training
(component.py; the drift measures in drift.py, their thresholds in thresholds.py)."""
