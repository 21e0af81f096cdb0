"""The web console at /ui/, driven through Debian's headless Chromium (Playwright for Python)
against a real ``rainer serve``: the key list and its filter, a key and its paged history,
comparing versions, reverting with and without a conflict, hostile keys and payloads, binary
payloads, the live notice, sign-in under --auth, and an accessibility check of every page with
axe-core (vendored in tests/package/vendor/axe-core).

Without Chromium or Playwright these tests skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import pytest
from http_util import call, post_commit

import harness
from harness.chromium import Chromium, launch
from harness.rainer import RainerServer
from rainer.server.app import RainerApp, ServerConfig
from rainer.server.auth import new_token
from rainer.server.console import Console
from rainer.storage.memory import MemoryStorage

try:  # expect() polls from Python: the pages' policy forbids evaluating strings in them
    from playwright.sync_api import expect
except ImportError:  # the browser tests skip (harness.require), or fail under CI=true
    expect = None

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
HOSTILE_KEY = "<img src=x onerror=alert('key')>"
HOSTILE_PAYLOAD = (
    b'{"<script>alert(\\"k\\")</script>": "<img src=x onerror=alert(\'v\')>",\n'
    b' "note": "</pre><script>alert(1)</script>"}'
)
BINARY = bytes(range(256)) * 4
BIG_HISTORY = 120  # versions of history.big: three pages of 50


def ui(server, key: str | None = None, action: str | None = None, query: str = "") -> str:
    """The console's list, or the page of ``key`` (and ``action``: compare, revert...)."""
    path = "" if key is None else f"keys/{quote(key, safe='')}" + (f"/{action}" if action else "")
    return f"{server.url}/ui/{path}" + (f"?{query}" if query else "")


def commit(server, key: str, version: int, payload: bytes, author: str = "alice", comment=""):
    reply = post_commit(
        server.diary_url, quote(key, safe=""), version, payload, author=author, comment=comment
    )
    assert reply.status == 200, reply.text
    return reply.json()


def head(server, key: str) -> dict:
    reply = call("GET", f"{server.diary_url}/{quote(key, safe='')}/meta")
    assert reply.status == 200
    return reply.json()


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    database = tmp_path_factory.mktemp("console") / "rainer.db"
    with RainerServer(["--database", f"sqlite:///{database}"]) as running:
        commit(
            running,
            "prod.web.json",
            1,
            b'{"spec": {"replicas": 3, "image": "web:1"}}',
            "alice",
            "first cut",
        )
        commit(
            running,
            "prod.web.json",
            2,
            b'{"spec": {"replicas": 5, "image": "web:1"}}',
            "bob",
            "more workers",
        )
        commit(
            running,
            "prod.web.json",
            3,
            b'{"spec": {"replicas": 5, "image": "web:2"}, "debug": true}',
            "carol",
            "new image",
        )
        commit(
            running, "staging.db.yaml", 1, b"pool: 4\nhosts:\n  - a\n  - b\n", "dave", "db settings"
        )
        commit(
            running,
            "staging.db.yaml",
            2,
            b"pool: 8  # more\nhosts:\n  - a\n  - c\n",
            "dave",
            "bigger pool",
        )
        commit(running, "notes.txt", 1, b"hello\nworld\n", "erin")
        commit(running, "old.key", 1, b"gone soon", "erin")
        assert (
            post_commit(running.diary_url, "old.key", 2, b"", author="erin", empty="yes").status
            == 200
        )
        for number in range(1, 131):
            commit(running, f"svc.item-{number:03d}", 1, b"x", "bot", f"item {number}")
        for version in range(1, BIG_HISTORY + 1):
            commit(
                running,
                "history.big",
                version,
                f"value {version}\n".encode(),
                "bot",
                f"step {version}",
            )
        commit(
            running,
            HOSTILE_KEY,
            1,
            HOSTILE_PAYLOAD,
            "<script>alert('author')</script>",
            "\"><img src=x onerror=alert('comment')>",
        )
        commit(
            running,
            HOSTILE_KEY,
            2,
            HOSTILE_PAYLOAD + b" ",
            "<b>mallory</b>",
            "<svg onload=alert(2)>",
        )
        commit(running, "blob.bin", 1, BINARY, "frank", "binary")
        yield running


@pytest.fixture(scope="module")
def browser():
    harness.require(Chromium)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


class Watched:
    """A page and what it raised: dialogs (alert, confirm...) and script errors."""

    def __init__(self, page) -> None:
        self.page = page
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", self._console)
        page.on("response", self._response)

    def _console(self, message) -> None:
        # Script errors and refusals by the page's policy; a 404 page is not an error here.
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.errors.append(message.text)

    def _response(self, response) -> None:
        if response.status >= 400 and response.request.resource_type != "document":
            self.errors.append(f"{response.status} for {response.url}")

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()


@pytest.fixture
def watched(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    seen = Watched(page)
    yield seen
    context.close()
    assert seen.dialogs == [], "a page opened a dialog: something ran that should not"
    assert seen.errors == [], f"script errors or refused resources: {seen.errors}"


@pytest.fixture
def page(watched):
    return watched.page


def axe_violations(page) -> list[dict]:
    """axe-core's serious and critical violations on the page as it is now."""
    page.evaluate(AXE.read_text("utf-8"))
    result = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
    )
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["html"][:200] for n in v["nodes"]][:5]}
        for v in result
        if v["impact"] in ("serious", "critical")
    ]


# -- the key list ---------------------------------------------------------------------------------


def test_the_list_filters_as_you_type(server, page):
    total = len(call("GET", server.diary_url).json())  # tombstones left out, as here
    page.goto(ui(server))
    assert page.locator("#count").inner_text().startswith(f"{total} keys")
    assert page.locator("table.keys a[data-nav]").count() == 100  # the first page
    page.locator("#q").press_sequentially("item-12", delay=20)
    expect(page.locator("table.keys a[data-nav]")).to_have_count(10)
    keys = page.locator("table.keys a[data-nav]").all_inner_texts()
    assert keys == [f"svc.item-{n}" for n in range(120, 130)]
    assert "q=item-12" in page.url  # the URL follows, so the view can be shared
    assert f"10 of {total} keys match" in page.locator("#count").inner_text()
    # grouped by prefix: one heading for svc., with the count of its keys among the matches
    assert page.locator("tr.group").all_inner_texts() == ["svc. 10 keys"]


def test_the_list_works_without_javascript(server, browser):
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(ui(server, query="q=history&all=yes"))
        assert page.locator("table.keys a[data-nav]").all_inner_texts() == ["history.big"]
        page.goto(ui(server))
        page.locator("#q").fill("db.yaml")
        page.locator("#filter button[type=submit]").click()
        page.wait_for_url(re.compile(r"q=db\.yaml"))
        assert page.locator("table.keys a[data-nav]").all_inner_texts() == ["staging.db.yaml"]
    finally:
        context.close()


def test_tombstones_are_behind_a_toggle_and_pages_page(server, page):
    page.goto(ui(server, query="q=old"))
    assert page.locator("table.keys a[data-nav]").count() == 0
    page.locator("input[name=all]").check()
    page.wait_for_selector("table.keys tr.tomb")
    assert page.locator("tr.tomb .tag").inner_text() == "deleted"
    page.goto(ui(server, query="prefix=svc.&group=no"))
    assert page.locator(".chip code").inner_text() == "svc."
    page.get_by_role("link", name="Next").click()
    assert page.locator("table.keys a[data-nav]").all_inner_texts() == [
        f"svc.item-{n:03d}" for n in range(101, 131)
    ]


def test_keyboard_slash_j_k_and_enter(server, page):
    page.goto(ui(server, query="q=prod"))
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.press("Escape")
    page.keyboard.press("j")
    assert page.evaluate("document.activeElement.textContent") == "prod.web.json"
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/ui/keys/prod\.web\.json$"))
    page.keyboard.press("j")  # on a key page, j walks the history
    assert page.evaluate("document.activeElement.textContent") == "Version 3"
    page.keyboard.press("j")
    assert page.evaluate("document.activeElement.textContent") == "Version 2"
    page.keyboard.press("k")
    assert page.evaluate("document.activeElement.textContent") == "Version 3"


# -- a key ----------------------------------------------------------------------------------------


def test_a_key_shows_its_payload_highlighted_and_its_history(server, page):
    page.goto(ui(server))
    page.get_by_role("link", name="prod.web.json").click()
    assert page.locator("h1").inner_text() == "prod.web.json"
    assert page.locator("pre.payload .tk-key").first.inner_text() == '"spec"'
    assert '"replicas": 5' in page.locator("pre.payload").inner_text()  # indented
    assert page.locator(".timeline li .tl-head a").all_inner_texts() == [
        "Version 3",
        "Version 2",
        "Version 1",
    ]
    page.get_by_role("link", name="Show as stored").click()
    assert page.locator("pre.payload").inner_text().startswith('{"spec": {"replicas": 5')
    page.goto(ui(server, "staging.db.yaml"))
    assert page.locator("pre.payload.yaml .tk-comment").inner_text() == "# more"
    assert page.locator("pre.payload.yaml .tk-key").first.inner_text() == "pool"


def test_the_history_pages(server, page):
    page.goto(ui(server, "history.big"))
    pager = page.locator("nav.pager[aria-label='Pages of the history']")
    assert pager.locator("span").inner_text() == "Versions 120\u201371"
    pager.get_by_role("link", name="Older").click()
    assert pager.locator("span").inner_text() == "Versions 70\u201321"
    assert "before=71" in page.url
    pager.get_by_role("link", name="Older").click()
    assert pager.locator("span").inner_text() == "Versions 20\u20131"
    assert pager.get_by_role("link", name="Older").count() == 0
    pager.get_by_role("link", name="Newer").click()
    assert pager.locator("span").inner_text() == "Versions 70\u201321"
    pager.get_by_role("link", name="Newest").click()
    assert pager.locator("span").inner_text() == "Versions 120\u201371"
    page.locator("#jump").fill("7")
    page.get_by_role("button", name="Go").click()
    assert page.locator("#shown-title").inner_text().startswith("Version 7")
    assert page.locator("pre.payload").inner_text().strip() == "value 7"
    assert page.locator(".timeline a[aria-current]").inner_text() == "Version 7"


# -- compare --------------------------------------------------------------------------------------


def test_compare_two_versions_by_line_and_by_path(server, page):
    page.goto(ui(server, "prod.web.json"))
    page.get_by_label("compare from version 1").check()
    page.get_by_label("compare to version 3").check()
    page.get_by_role("button", name="Compare the selected versions").click()
    page.wait_for_url(re.compile(r"/compare\?(to=3&from=1|from=1&to=3)$"))
    paths = page.locator("ul.paths li").all_inner_texts()
    assert [" ".join(text.split()) for text in paths] == [
        "spec.replicas: was 3 → , now 5",
        'spec.image: was "web:1" → , now "web:2"',
        "debug: true added",
    ]
    assert page.locator("table.split tr.chg").count() == 1
    inserted = page.locator("table.split tr.chg td.new ins").all_inner_texts()
    assert inserted[:2] == ["5", "2"] and "debug" in inserted[2]
    page.get_by_role("link", name="Unified view").click()
    assert "view=unified" in page.url
    assert page.locator("table.unified tr.del").count() == 1
    assert page.locator("table.unified tr.ins").count() == 1
    page.get_by_role("link", name="Swap").click()
    assert page.locator("h1").inner_text().endswith("version 3 → version 1")


def test_compare_yaml_by_path_and_folded_lines(server, page):
    page.goto(ui(server, "staging.db.yaml", "compare"))  # defaults: the newest two
    assert [" ".join(t.split()) for t in page.locator("ul.paths li").all_inner_texts()] == [
        "pool: was 4 → , now 8",
        'hosts[1]: was "b" → , now "c"',
    ]
    page.goto(ui(server, "history.big", "compare", query="from=3&to=90"))
    assert page.locator("table.split tr.chg td.old del").inner_text() == "3"


# -- revert ---------------------------------------------------------------------------------------


def test_revert_without_a_conflict(server, page):
    before = head(server, "staging.db.yaml")
    page.goto(ui(server, "staging.db.yaml", query="version=1"))
    page.get_by_role("link", name="Make version 1 current again…").click()
    assert page.locator("h1").inner_text() == "Make version 1 of staging.db.yaml current again"
    assert page.locator("table.unified tr.ins").count() == 2  # the diff it will make
    page.get_by_label("Your name").fill("grace")
    page.get_by_label("Why (optional)").fill("pool too big")
    page.get_by_role("button", name=f"Commit version {before['version'] + 1}").click()
    page.wait_for_url(re.compile(r"restored=1"))
    assert "restores version 1" in page.locator(".notice.ok").inner_text()
    after = head(server, "staging.db.yaml")
    assert after["version"] == before["version"] + 1
    assert (after["author"], after["comment"]) == ("grace", "Revert to version 1: pool too big")
    reply = call("GET", f"{server.diary_url}/staging.db.yaml")
    assert reply.body == b"pool: 4\nhosts:\n  - a\n  - b\n"
    # The name is remembered for the next revert (a cookie, not a secret).
    page.goto(ui(server, "prod.web.json", "revert", query="version=1"))
    assert page.get_by_label("Your name").input_value() == "grace"


def test_revert_with_a_conflict_explains_it_and_shows_the_new_diff(server, page):
    key = "conflict.json"
    commit(server, key, 1, b'{"a": 1}')
    commit(server, key, 2, b'{"a": 2}')
    page.goto(ui(server, key, "revert", query="version=1"))
    page.get_by_label("Your name").fill("heidi")
    commit(server, key, 3, b'{"a": 3, "b": true}', "ivan", "meanwhile")  # someone else
    page.get_by_role("button", name="Commit version 3").click()
    alert = page.get_by_role("alert")
    assert "Someone committed meanwhile" in alert.inner_text()
    assert "version 3 now, not 2" in alert.inner_text()
    assert "ivan" in page.locator(".meanwhile").inner_text()
    assert head(server, key)["version"] == 3  # nothing was committed
    # the diff is now against version 3, and the form offers version 4
    paths = [" ".join(t.split()) for t in page.locator("ul.paths li").all_inner_texts()]
    assert "a: was 3 → , now 1" in paths[-2:] and "b: true removed" in paths[-2:]
    page.get_by_role("button", name="Commit version 4").click()
    page.wait_for_url(re.compile(r"restored=1&as=4"))
    after = head(server, key)
    assert (after["version"], after["author"]) == (4, "heidi")
    assert call("GET", f"{server.diary_url}/{key}").body == b'{"a": 1}'


def test_a_form_from_elsewhere_is_refused(server):
    target = ui(server, "notes.txt", "revert")
    form = "csrf=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA&version=1&base=1&author=x"
    forged = call(
        "POST",
        target,
        form,
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": "rainer_csrf=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "Sec-Fetch-Site": "cross-site",
        },
    )
    assert forged.status == 403
    no_cookie = call("POST", target, form, {"Content-Type": "application/x-www-form-urlencoded"})
    assert no_cookie.status == 403
    assert head(server, "notes.txt")["version"] == 1


# -- safety ---------------------------------------------------------------------------------------


def test_hostile_keys_authors_comments_and_payloads_stay_text(server, watched):
    page = watched.page
    page.goto(ui(server, query="q=onerror"))
    link = page.locator("table.keys a[data-nav]")
    assert link.inner_text() == HOSTILE_KEY
    assert page.locator("table.keys td").nth(2).inner_text() == "<b>mallory</b>"
    link.click()
    assert page.locator("h1").inner_text() == HOSTILE_KEY
    assert "</pre><script>alert(1)</script>" in page.locator("pre.payload").inner_text()
    assert page.get_by_text("<script>alert('author')</script>").count() == 1
    page.goto(ui(server, HOSTILE_KEY, "compare", query="from=1&to=2&view=unified"))
    page.goto(ui(server, HOSTILE_KEY, "revert", query="version=1"))
    page.goto(ui(server, HOSTILE_KEY, query="version=1&indent=no"))
    # Nothing the attacker wrote became an element or ran.
    assert page.locator("img[src=x], svg, b, script:not([src])").count() == 0
    assert watched.dialogs == []


def test_the_live_request_waits_for_a_newer_version(server):
    commit(server, "wait.json", 1, b"{}")
    began = time.monotonic()
    reply = call("GET", ui(server, "wait.json", "head.json", query="index=1&wait=1"))
    assert reply.status == 200 and reply.json()["version"] == 1
    assert 0.9 < time.monotonic() - began < 5  # nothing newer: the whole wait, then the head
    at_once = call("GET", ui(server, "wait.json", "head.json", query="index=0&wait=20"))
    assert at_once.json()["version"] == 1  # already past version 0: no wait


def test_every_answer_carries_a_strict_policy(server):
    for url in (
        ui(server),
        ui(server, "prod.web.json"),
        ui(server, "nope"),
        ui(server, "blob.bin", "download"),
    ):
        reply = call("GET", url)
        policy = reply.header("content-security-policy")
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy
        assert reply.header("x-frame-options") == "DENY"
        assert reply.header("x-content-type-options") == "nosniff"
    page = call("GET", ui(server, "prod.web.json")).text
    assert "<script>" not in page and " style=" not in page  # no inline script or style


def test_a_binary_payload_is_a_size_a_hex_preview_and_a_download(server, page):
    page.goto(ui(server, "blob.bin"))
    assert "Binary payload of 1.0 KiB (1,024 bytes)" in page.locator("main").inner_text()
    first = page.locator("table.hex tbody tr").first.locator("td").all_inner_texts()
    assert first[0] == "00000000" and first[1].startswith("00 01 02 03")
    assert page.locator("table.hex tbody tr").count() == 16  # 256 bytes
    with page.expect_download() as info:
        page.get_by_role("link", name="Download version 1").click()
    assert Path(info.value.path()).read_bytes() == BINARY


def test_the_key_page_offers_a_reload_when_the_key_changes(server, page):
    commit(server, "live.json", 1, b"{}")
    page.goto(ui(server, "live.json"))
    assert "waits on the server" in page.locator("[data-live-status]").inner_text()
    page.wait_for_timeout(300)  # the page's request is now waiting on the server
    commit(server, "live.json", 2, b'{"x": 1}', "judy")
    notice = page.locator("#live")
    notice.get_by_role("link", name="Reload to see it").wait_for()
    assert notice.inner_text().startswith("Version 2 was committed by judy")


# -- accessibility --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "where",
    [
        "",
        "?q=svc&all=yes",
        "keys/prod.web.json",
        "keys/staging.db.yaml?version=1",
        "keys/history.big?before=40",
        "keys/blob.bin",
        "keys/old.key",
        "keys/prod.web.json/compare?from=1&to=3",
        "keys/prod.web.json/compare?from=1&to=3&view=unified&indent=yes",
        "keys/blob.bin/compare?from=1&to=1",
        "keys/prod.web.json/revert?version=1",
        "keys/missing",
    ],
)
def test_pages_have_no_serious_accessibility_violations(server, page, where):
    page.goto(f"{server.url}/ui/{where}")
    assert axe_violations(page) == []


def test_readable_on_a_phone(server, browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        page = context.new_page()
        for where in ("", "keys/prod.web.json", "keys/prod.web.json/compare?from=1&to=3"):
            page.goto(f"{server.url}/ui/{where}")
            # The page itself never scrolls sideways; wide tables scroll in their own region.
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
    finally:
        context.close()


# -- serving ---------------------------------------------------------------------------------------


def test_no_ui_turns_the_console_off():
    with RainerServer(["--database", "memory", "--no-ui"]) as plain:
        assert call("GET", plain.url + "/ui/").status == 404  # the API's own 404
        assert call("GET", plain.url + "/healthz").status == 200


def test_under_the_root_prefix_the_console_keeps_ui():
    """``rainer serve`` refuses ``--prefix /``; an application embedding RainerApp under ``/``
    still has the console at /ui/, so a key named ``ui`` is the console's there."""
    app = RainerApp(MemoryStorage(), ServerConfig(prefix="/"))
    app.console = Console(app)
    app.start()
    try:
        assert asgi(app, "POST", "/web.json/1", b"{}", [(b"x-rainer-author", b"a")])[0] == 200
        assert asgi(app, "GET", "/web.json") == (200, b"{}")
        assert asgi(app, "GET", "/ui")[0] == 308
        status, body = asgi(app, "GET", "/ui/")
        assert status == 200 and b"web.json" in body
        assert asgi(app, "POST", "/ui/1", b"x", [(b"x-rainer-author", b"a")])[0] == 404
    finally:
        app.stop()


def asgi(app, method: str, path: str, body: bytes = b"", headers=()) -> tuple[int, bytes]:
    """One request straight into an ASGI application: (status, body)."""
    raw, _, query = path.partition("?")
    scope = {
        "type": "http",
        "method": method,
        "path": raw,
        "raw_path": raw.encode(),
        "query_string": query.encode(),
        "headers": [(b"host", b"127.0.0.1"), *headers],
        "client": ("127.0.0.1", 1),
        "scheme": "http",
    }
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        sent.append(message)

    # A thread of its own: Playwright's sync API may hold an event loop in this one.
    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, app(scope, receive, send)).result()
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


# -- with --auth ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    folder = tmp_path_factory.mktemp("console-auth")
    tokens = {name: new_token() for name in ("deployer", "viewer")}
    (folder / "auth.yaml").write_text(
        "roles:\n"
        "  deployer: {read: ['*'], write: ['app.*']}\n"
        "  reader: {read: ['*']}\n"
        "principals:\n"
        f"  deployer: {{roles: [deployer], tokens: ['{tokens['deployer'][1]}']}}\n"
        f"  viewer: {{roles: [reader], tokens: ['{tokens['viewer'][1]}']}}\n"
    )
    args = [
        "--database", f"sqlite:///{folder / 'rainer.db'}",
        "--auth", str(folder / "auth.yaml"),
        "--audit-log", str(folder / "audit.log"),
    ]  # fmt: skip
    with RainerServer(args) as running:
        running.tokens = {name: token for name, (token, _) in tokens.items()}
        running.audit_path = folder / "audit.log"
        bearer = {"Authorization": f"Bearer {running.tokens['deployer']}"}
        for version in (1, 2):
            payload = json.dumps({"v": version}).encode()
            reply = post_commit(running.diary_url, "app.web", version, payload, auth=bearer)
            assert reply.status == 200, reply.text
        yield running


def sign_in(page, server, name: str) -> None:
    page.goto(ui(server))
    page.wait_for_url(re.compile(r"/ui/sign-in"))
    page.get_by_label("Token").fill(server.tokens[name])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/ui/$"))


def test_sign_in_then_only_what_the_principal_may(secured, page):
    page.goto(ui(secured))
    page.wait_for_url(re.compile(r"/ui/sign-in\?next="))
    page.get_by_label("Token").fill("not-a-token")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text() == "That token is not valid."
    audit = [json.loads(line) for line in secured.audit_path.read_text().splitlines()]
    assert audit[-1]["outcome"] == "authentication failed"
    sign_in(page, secured, "deployer")
    assert "Signed in as deployer" in page.locator(".who").inner_text()
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert (
        cookies["rainer_session"]["httpOnly"] and cookies["rainer_session"]["sameSite"] == "Strict"
    )
    page.goto(ui(secured, "app.web", query="version=1"))
    page.get_by_role("link", name="Make version 1 current again…").click()
    assert page.get_by_label("Your name").count() == 0  # the author is the principal
    page.get_by_role("button", name="Commit version 3").click()
    page.wait_for_url(re.compile(r"restored=1"))
    meta = call(
        "GET",
        f"{secured.diary_url}/app.web/meta",
        headers={"Authorization": f"Bearer {secured.tokens['viewer']}"},
    ).json()
    assert (meta["version"], meta["author"]) == (3, "deployer")
    assert json.loads(secured.audit_path.read_text().splitlines()[-1])["principal"] == "deployer"


def test_a_forbidden_action_is_not_offered_nor_taken(secured, page):
    viewer = {"Authorization": f"Bearer {secured.tokens['viewer']}"}
    before = call("GET", f"{secured.diary_url}/app.web/meta", headers=viewer).json()["version"]
    sign_in(page, secured, "viewer")
    page.goto(ui(secured, "app.web", query="version=1"))
    assert page.get_by_role("link", name="Make version 1 current again…").count() == 0
    assert page.get_by_role("link", name=re.compile("^restore")).count() == 0
    page.goto(ui(secured, "app.web", "revert", query="version=1"))
    assert "viewer may not write 'app.web'" in page.locator("main").inner_text()
    # Forging the POST with the browser's own cookies is refused too, and nothing changes.
    csrf = {c["name"]: c["value"] for c in page.context.cookies()}["rainer_csrf"]
    reply = page.request.post(
        ui(secured, "app.web", "revert"),
        form={"csrf": csrf, "version": "1", "base": str(before)},
        headers={"Sec-Fetch-Site": "same-origin"},
    )
    assert reply.status == 403
    after = call("GET", f"{secured.diary_url}/app.web/meta", headers=viewer).json()["version"]
    assert after == before
    page.get_by_role("button", name="Sign out").click()
    page.goto(ui(secured, "app.web"))
    page.wait_for_url(re.compile(r"/ui/sign-in"))
    assert axe_violations(page) == []
