"""AnomaliesGate: fails the run when ExampleValidator found anomalies, before training."""

from kiko.components.anomalies_gate.component import AnomaliesGate, DataAnomaliesError

__all__ = ["AnomaliesGate", "DataAnomaliesError"]
