"""MovieLensExampleGen: MovieLens rating files to split tf.Example TFRecords (see component.py)."""
