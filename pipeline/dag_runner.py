"""TFX's LocalDagRunner under a run id the caller chose, so the local runner can name its own run
(in the home's lock record, its console summary and its report).

TFX's own picks `datetime.now().isoformat()` inside `run_with_ir` and never returns it.
"""

from tfx import v1 as tfx

from kiko.components import _tfx_internal as tfx_internal


class OwnRunIdLocalDagRunner(tfx.orchestration.LocalDagRunner):
    """A LocalDagRunner whose runs take `run_id`.

    `run` stays TFX's, so the tfx CLI's compile-only patch of it keeps working; `started`
    tells whether a run actually began (the CLI's `pipeline create` only compiles).
    """

    def __init__(self, run_id: str):
        super().__init__()
        self.run_id = run_id
        self.started = False

    def run_with_ir(self, pipeline, run_options=None):
        # Once substituted, TFX's own substitution finds no run-id parameter left.
        tfx_internal.substitute_runtime_parameter(
            pipeline, {tfx_internal.PIPELINE_RUN_ID_PARAMETER_NAME: self.run_id})
        self.started = True
        return super().run_with_ir(pipeline, run_options=run_options)
