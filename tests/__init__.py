"""kiko tests."""
