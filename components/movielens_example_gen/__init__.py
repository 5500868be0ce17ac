"""MovieLensExampleGen: MovieLens rating files to split tf.Example TFRecords.

component.py (the component and its input/output configs), options.py (its one Options type),
driver.py (content fingerprint), executor.py (the Beam executor) over inputs.py (what a split
pattern names), passes.py (the Beam passes), example_encoder.py, quality.py (counting),
report.py (the data-quality report and checks), progress.py, outputs.py (what is written where)
and errors.py.
"""
