"""A headless Chromium, driven by Playwright, for tests of the pages staff see.

The browser is Debian's (/usr/bin/chromium, which `make test` installs when it runs as root):
Playwright cannot download its own browser builds here. One browser serves the session;
each page gets a fresh context, so cookies never leak between tests. Staff are signed in the
way the development issuer does it: its JWT in the session cookie, which ignores ports and so
reaches every service's admin pages on 127.0.0.1.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import NoReturn

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from playwright.async_api import Error as PlaywrightError

from kinetic_infra.auth.principal import Principal
from kinetic_infra.http.auth import SESSION_COOKIE
from kinetic_infra.stack.platform import Platform

CHROMIUM = Path("/usr/bin/chromium")
# --no-sandbox: CI and containers run as root, where Chromium's sandbox refuses to start;
# --disable-gpu: there is none. The rest stop Chromium's own calls home (updates, sync, QUIC
# probes), which have no network to reach here, and its first-run work.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
INSTALL = "`sudo apt-get install chromium` (or `make test` as root)"

OpenPage = Callable[[str], Awaitable[Page]]
SignedIn = Callable[[str, Principal], Awaitable[Page]]
_OpenAs = Callable[[str, Principal | None], Awaitable[Page]]


def _unavailable(reason: str) -> NoReturn:
    """In CI a missing browser is a broken build, not a reason to skip; on a developer's
    machine without Chromium the tier skips and says how to install it."""
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail(f"browser tier: {reason}", pytrace=False)
    pytest.skip(f"browser tier: {reason}")


def _stderr_of(exc: PlaywrightError) -> str:
    """What the browser itself printed (say, a missing library), not Playwright's generic
    'browser has been closed' line nor its long command line."""
    logs = exc.message.split("Call log:")[0].splitlines()
    printed = [line.split("][err] ", 1)[1] for line in logs if "][err] " in line]
    return "; ".join(printed[-3:]) or logs[0]


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        _unavailable(f"no Chromium at {CHROMIUM}: install it with {INSTALL}")
    async with async_playwright() as playwright:
        try:
            chromium = await playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        except PlaywrightError as exc:
            _unavailable(f"Chromium at {CHROMIUM} did not start ({_stderr_of(exc)}); "
                         f"reinstall it with {INSTALL}")
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def _pages(browser: Browser, platform: Platform) -> AsyncIterator[_OpenAs]:
    contexts: list[BrowserContext] = []

    async def open_page(service: str, principal: Principal | None) -> Page:
        base = platform.base_url(service)
        context = await browser.new_context(base_url=base)
        # Fail within seconds, not Playwright's 30 s: every page here is local.
        context.set_default_timeout(10_000)
        contexts.append(context)
        if principal is not None:
            # What the development issuer's sign-in sets (dev_issuer.login).
            await context.add_cookies([{
                "name": SESSION_COOKIE, "value": platform.mint(principal), "url": base,
                "httpOnly": True, "sameSite": "Lax"}])
        return await context.new_page()

    yield open_page
    for context in contexts:
        await context.close()


@pytest.fixture
def signed_in(_pages: _OpenAs) -> SignedIn:
    """``page = await signed_in("booking", operator_of(tenant))``: a page whose relative
    URLs resolve against that service (``await page.goto("/admin")``), signed in as them."""
    return _pages


@pytest.fixture
def signed_out(_pages: _OpenAs) -> OpenPage:
    """``page = await signed_out("booking")``: the same, with no session cookie."""
    return lambda service: _pages(service, None)
