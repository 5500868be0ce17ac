"""MovieLensExampleGen: MovieLens rating files to split tf.Example TFRecords.

component.py (the component, its input/output configs and where `--data` is read from),
options.py (its one Options type), driver.py (span resolution, content fingerprint, versions
from ML Metadata), executor.py (the Beam executor) over inputs.py (what a split pattern names;
spans resolved as TFX does), passes.py (the Beam passes), example_encoder.py, quality.py
(counting), report.py (the data-quality report and checks), progress.py, outputs.py (what is
written where, and reading the ids back) and errors.py.
"""
