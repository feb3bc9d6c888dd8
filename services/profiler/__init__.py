"""The profiler: turns manifest batches into hits (watchlist matches and rule hits), one batch at a time.

frames.py (Manifest batch -> polars), watchlist.py (members' lists), rules.py (hub rules as polars
expressions), scoring.py (pure batch scoring), worker.py (the Kafka processing loop).
"""
