"""The hub's edge: checks and cleaning of what carriers send (batch manifests at intake, interactive checks in the
profiler), shared so both paths screen the same canonical data."""
