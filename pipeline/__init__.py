"""The kiko TFX pipeline, its configuration and runners (installed as `kiko.pipeline`)."""
