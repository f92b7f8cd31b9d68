"""Browser tests: the web UI in headless Chromium (Debian's /usr/bin/chromium) via Playwright."""
