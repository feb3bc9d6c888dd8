"""The member console in a real browser (headless Chromium through Playwright): tests/browser/conftest.py."""
