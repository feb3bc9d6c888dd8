"""The profiler: turns manifest batches into hits (watchlist matches and rule hits), one batch at a time.

frames.py (Manifest batch -> polars), watchlist.py (members' lists), rules.py (evaluating rules, written in the
rule language of services.rules, over a batch), scoring.py (pure batch scoring), model.py (the risk model as the
profiler runs it: load, score, explain), worker.py (the Kafka processing loop). training.py fits the model (`apihub
model train`, on the synthetic history of a source checkout's synthetic/); the profiler never imports it.
"""
