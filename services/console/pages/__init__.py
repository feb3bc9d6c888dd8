"""The console's pages: one module each, with a FastAPI ``router`` (services.console.app.PAGES)."""
