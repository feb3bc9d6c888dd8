"""The dev folders of a source checkout, for the few commands that run their code.

The runtime package (services/) holds what a deployment runs; the demo and synthetic data (synthetic/) and the
benchmarks (benchmarks/) live beside it in the repository, and the Docker image copies services/ only. A command
that needs them (`apihub up` with its demo, `apihub dev demo-files`, `apihub model train`, `apihub bench`) imports
them with import_dev when it runs, never at start, so `apihub` itself runs from an install of services/ alone.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from services.errors import HubError

# What to do where a dev folder is missing: `make setup` installs the checkout (editable), dev folders included.
CHECKOUT_HINT = "clone the repository and run `make setup` there"


class DevCodeMissingError(HubError):
    """A command needs a dev folder (synthetic/, benchmarks/) that this install does not hold."""


def import_dev(module: str, needed_by: str) -> ModuleType:
    """Import `module` of a dev folder for the command `needed_by` (e.g. "apihub dev demo-files").

    Raises DevCodeMissingError, saying how to get it, when the dev folder itself is not installed; a module that
    is there but fails to import (a bug, a missing dependency) raises as usual.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if module != missing and not module.startswith(missing + "."):
            raise
        folder = module.partition(".")[0]
        raise DevCodeMissingError(
            f"{needed_by} needs a source checkout: {folder}/ is not part of this install ({CHECKOUT_HINT})"
        ) from None
