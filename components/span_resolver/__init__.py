"""Resolver strategies over spans: the training window and the drift baseline."""
