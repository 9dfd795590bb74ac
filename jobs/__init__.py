"""Entry points: the `arena` CLI and one module per batch job. The only layer that picks a cluster."""
