"""MovieLens data outside TensorFlow: file layouts and their readers, download, generator.

Nothing here builds a TensorFlow graph; the ExampleGen component, the benchmarks and the
command-line tools share these readers.
"""
