"""Data files shipped with the profiler: the starter rule templates."""
