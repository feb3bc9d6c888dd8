"""Synthetic data and the demo that plays it: dev code, outside the runtime package `services`.

    traffic.py   made-up Pacific flights, travellers and the demo watchlists (demo, tests, benchmarks)
    history.py   the labelled synthetic travel history the risk model is trained on (`apihub model train`)
    demo.py      what `apihub up` plays by default and what `apihub dev demo-files` writes

Every name, date and document number here is invented. The hub's runtime never imports this package: the commands
that need it (`apihub up` with its demo, `apihub dev demo-files`, `apihub model train`) import it when they run, and
say that they need a source checkout where it is not installed (the Docker image copies services/ only).
"""
