"""Node ids of the kiko pipeline: every node gets an explicit `.with_id()`, and ML Metadata
queries, the run console and the tests find components by these ids."""

EXAMPLE_GEN_ID = "MovieLensExampleGen"
STATISTICS_GEN_ID = "StatisticsGen"
SCHEMA_GEN_ID = "ImportSchemaGen"
EXAMPLE_VALIDATOR_ID = "ExampleValidator"
DRIFT_BASELINE_ID = "DriftBaselineResolver"
ANOMALIES_GATE_ID = "AnomaliesGate"
SPAN_WINDOW_ID = "SpanWindowResolver"
BASE_MODEL_RESOLVER_ID = "BaseModelResolver"
TRAINER_ID = "Trainer"
MODEL_RESOLVER_ID = "BaselineModelResolver"
EVALUATOR_ID = "Evaluator"
PUSHER_ID = "Pusher"

# Resolver nodes: they pick artifacts (recorded as executions of their own) and run no executor.
RESOLVER_IDS = (DRIFT_BASELINE_ID, SPAN_WINDOW_ID, BASE_MODEL_RESOLVER_ID, MODEL_RESOLVER_ID)
