"""Custom TFX components of kiko (installed as `kiko.components`)."""
