"""Reading a kiko home's ML Metadata, one module per thing read: `store` (the read-only store),
`runs`, `artifacts`, `evaluation` (TFMA), `models` (pushes, the served model), `lineage` and
`training` (the Trainer's metrics.json). Every public function returns plain dicts and lists:
what `kiko inspect --json` prints and what `kiko report` draws."""
