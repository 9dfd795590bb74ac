"""The data flywheel: training-pool slices, battle-outcome selection into trl shards,
training jobs (ARCHITECTURE.md, "Flywheel")."""
