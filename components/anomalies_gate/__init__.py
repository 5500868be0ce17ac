"""AnomaliesGate: fails the run when ExampleValidator found anomalies, before training."""

from components.anomalies_gate.component import AnomaliesGate, DataAnomaliesError

__all__ = ["AnomaliesGate", "DataAnomaliesError"]
