"""The console's ASGI application: routing, forms, cookies, sign-in and the headers every answer
carries.

``RainerApp`` hands it every request under ``/ui/`` once the Host header has passed the
server's check. Routes (every key percent-encoded as one path segment)::

    GET  /ui/                          keys (?q= filter, ?prefix=, ?all=yes tombstones,
                                       ?group=no, ?page=)
    GET  /ui/keys/KEY                  a key: a version's payload (?version=, ?indent=no) and
                                       a page of its history (?before=)
    GET  /ui/keys/KEY/compare          two versions (?from=&to=, ?view=unified, ?full=yes,
                                       ?indent=yes)
    GET  /ui/keys/KEY/revert           the confirmation (?version=)
    POST /ui/keys/KEY/revert           the revert itself (a form with a CSRF token)
    GET  /ui/keys/KEY/download         a version's payload as a file (?version=)
    GET  /ui/keys/KEY/head.json        the head's metadata (?index=N&wait=: once past N), for
                                       the key page's live notice
    GET  /ui/sign-in, POST /ui/sign-in, POST /ui/sign-out    with --auth
    GET  /ui/static/NAME               CSS, JavaScript, the icon

Reads and writes go through RainerApp's ``read_*`` methods and ``commit``, so the console sees
and checks exactly what the HTTP API does; with ``--auth`` it asks the server's guard who the
visitor is and shows and does only what that principal may. Anything that costs CPU
(filtering, highlighting, diffs, templates) runs on the console's own two threads, never on the
event loop.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypedDict
from urllib.parse import quote, unquote, urlsplit

from rainer import defaults, wire
from rainer.commit import Commit, CommitInfo, now, validate_key
from rainer.errors import (
    BadRequestError,
    CommitOrderingError,
    CorruptCommitError,
    NotFoundError,
    PayloadTooLargeError,
    StorageUnavailableError,
)
from rainer.server.app import RainerApp
from rainer.server.asgi_types import Receive, Scope, Send
from rainer.server.auth import Credentials, Principal
from rainer.server.console import render, views
from rainer.server.request import INT_MAX, Query, decode
from rainer.server.responses import Refused, allow_method, encode_headers
from rainer.server.watch import parse_wait

log = logging.getLogger(__name__)

#: Longest a key page's live request waits for news, in seconds: well under the idle timeout
#: of the proxies a console is likely to sit behind.
LIVE_WAIT = 25.0
#: How long the key page waits after a failed live request (the server is away), in seconds.
RETRY_SECONDS = 5
#: A filter longer than this is cut: it could only match nothing.
MAX_FILTER_CHARS = 300
#: The largest form the console takes (an author, a comment and a few numbers).
MAX_FORM_BYTES = 64 * 1024
#: Commits since the version a revert was based on, listed when the revert conflicts.
MEANWHILE_SHOWN = 10

CSRF_COOKIE = "rainer_csrf"
AUTHOR_COOKIE = "rainer_author"
#: With --auth: the visitor's token, for the browser's session only.
SESSION_COOKIE = "rainer_session"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")

# Nothing but this origin's own files: no inline script or style, no frames, forms only here.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
_HTML = "text/html; charset=utf-8"


class Page:
    """An answer: status, body and headers (the security headers always among them)."""

    __slots__ = ("body", "headers", "status")

    def __init__(
        self,
        status: int,
        body: bytes,
        content_type: str = _HTML,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.headers = [
            (b"content-length", b"%d" % len(body)),
            (b"content-type", content_type.encode()),
            *_SECURITY_HEADERS,
            *encode_headers(headers or []),
        ]


class Meanwhile(TypedDict):
    """What a revert page shows of the commits made since the version the revert was based
    on: that version, the newest of those commits, and how many there were."""

    base: Commit
    commits: list[CommitInfo]
    count: int


class _Again(Protocol):
    """The revert page again, with an error (and what was committed meanwhile)."""

    async def __call__(
        self, status: int, error: str, meanwhile: Meanwhile | None = None
    ) -> Page: ...


class _SignInFirst(Exception):
    """The visitor must sign in to see this (anonymous, with --auth)."""


class Visit:
    """One request as the console sees it: its query, cookies and, with --auth, its principal."""

    __slots__ = ("cookies", "path", "query", "scope", "who")

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.query = Query(scope.get("query_string", b""))
        self.cookies = _cookies(scope)
        self.path: bytes = (scope.get("raw_path") or scope["path"].encode()).split(b"?", 1)[0]
        #: None without --auth; the guard's principal otherwise
        self.who: Principal | None = None

    @property
    def address(self) -> str:
        client: tuple[str, int] | None = self.scope.get("client")
        return (client or ("-", 0))[0]

    @property
    def target(self) -> str:
        """This page's path and query, for coming back after signing in."""
        text = self.path.decode("latin-1")
        query = self.scope.get("query_string", b"").decode("latin-1")
        return text + (f"?{query}" if query else "")

    def may_read(self, key: str) -> bool:
        return self.who is None or self.who.can_read(key)

    def may_write(self, key: str) -> bool:
        return self.who is None or self.who.can_write(key)

    def require(self, key: str, permission: str) -> None:
        allowed = self.may_read(key) if permission == "read" else self.may_write(key)
        if allowed:
            return
        assert self.who is not None
        if self.who.anonymous:
            raise _SignInFirst
        raise Refused(403, f"Forbidden: {self.who.name} may not {permission} {key!r}")


class Console:
    """The web console of ``app``, an ASGI application for the paths under ``/ui/``."""

    def __init__(self, app: RainerApp, retry_seconds: float = RETRY_SECONDS) -> None:
        self.app = app
        self.retry_seconds = retry_seconds
        self.static = render.load_static()
        self.templates = render.Templates(app.config.prefix, self.static)
        # Two threads: a heavy page (a large diff) never holds up the others for long, and the
        # console never takes more than two threads' share of the interpreter.
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="rainer-console")

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        visit: Visit | None = None
        try:
            visit = Visit(scope)
            page = await self._route(visit, receive)
        except _SignInFirst:
            assert visit is not None
            page = _redirect(render.ui_url("sign-in", next=visit.target), 303)
        except BadRequestError as exc:
            page = self._error(visit, 400, "Bad request", str(exc))
        except NotFoundError as exc:
            page = self._error(visit, 404, "Not found", str(exc) or "Not found")
        except PayloadTooLargeError as exc:
            page = self._error(visit, 413, "Too large", str(exc))
        except Refused as exc:
            # A 401's challenges would make the browser ask for a password: the console has
            # its own sign-in page instead.
            kept = [h for h in exc.headers if h[0].lower() != "www-authenticate"]
            page = self._error(visit, exc.status, "Refused", str(exc), kept)
        except StorageUnavailableError as exc:
            log.error("console %s: %s", scope["path"][:200], exc)
            page = self._error(visit, 503, "Database unavailable", "The database does not answer.")
        except CorruptCommitError as exc:
            detail = f"key {exc.key!r} version {exc.version}" if exc.key is not None else "a row"
            page = self._error(visit, 500, "Unreadable commit", f"Unreadable commit: {detail}.")
        except Exception:
            log.exception("console %s %s failed", scope["method"], scope["path"][:200])
            page = self._error(visit, 500, "Internal error", "Internal server error (logged).")
        elapsed = (time.perf_counter() - started) * 1000
        # Server-Timing: the server's own time for the page (the benchmark reads it).
        headers = [*page.headers, (b"server-timing", b"app;dur=%.2f" % elapsed)]
        await send({"type": "http.response.start", "status": page.status, "headers": headers})
        body = b"" if scope["method"] == "HEAD" else page.body
        await send({"type": "http.response.body", "body": body})

    # -- routing ----------------------------------------------------------------------------

    async def _route(self, visit: Visit, receive: Receive) -> Page:
        method = visit.scope["method"]
        raw = visit.path
        if raw == render.MOUNT.encode():
            allow_method(method, "GET")
            qs = visit.scope.get("query_string", b"").decode("latin-1")
            return _redirect(render.MOUNT + "/" + (f"?{qs}" if qs else ""), 308)
        parts = raw[len(render.MOUNT) + 1 :].split(b"/")
        if parts[0] == b"static" and len(parts) == 2:
            allow_method(method, "GET")
            return self._static(parts[1], visit.query)
        if self.app.guard is not None:
            if parts == [b"sign-in"]:
                allow_method(method, "GET", "POST")
                if method == "POST":
                    return await self._sign_in_post(visit, receive)
                return await self._sign_in_page(visit)
            try:
                visit.who = self._identify(visit)
            except Refused as exc:
                if exc.status != 401:
                    raise
                # The session's token is no longer valid (rotated, or the file re-read).
                target = render.ui_url("sign-in", expired=True, next=visit.target)
                return _redirect(target, 303, [_clear_cookie(SESSION_COOKIE, visit.scope)])
            if parts == [b"sign-out"]:
                allow_method(method, "POST")
                return await self._sign_out(visit, receive)
        if parts == [b""]:
            allow_method(method, "GET")
            return await self._keys(visit)
        if parts[0] != b"keys" or len(parts) not in (2, 3) or not parts[1]:
            raise NotFoundError("No such page in the console")
        key = validate_key(decode(parts[1], "key"))
        action = parts[2] if len(parts) == 3 else None
        if action == b"revert" and method == "POST":
            return await self._revert_post(visit, key, receive)
        allow_method(method, *(("GET", "POST") if action == b"revert" else ("GET",)))
        visit.require(key, "read")
        if action is None:
            return await self._key(visit, key)
        if action == b"compare":
            return await self._compare(visit, key)
        if action == b"revert":
            visit.require(key, "write")
            return await self._revert_get(visit, key)
        if action == b"download":
            return await self._download(visit, key)
        if action == b"head.json":
            return await self._head_json(visit, key, receive)
        raise NotFoundError("No such page in the console")

    async def _rendered(
        self,
        visit: Visit,
        template: str,
        build: Callable[[], dict[str, Any]] | None = None,
        status: int = 200,
        headers: list[tuple[str, str]] | None = None,
        **extra: Any,
    ) -> Page:
        """``template`` filled with ``build()`` and ``extra``, on a console thread."""

        def work() -> bytes:
            context = build() if build is not None else {}
            context.update(extra)
            context.update(self._common(visit))
            return self.templates.render(template, **context)

        body = await asyncio.get_running_loop().run_in_executor(self._pool, work)
        cache = [("Cache-Control", "no-cache")] if status == 200 else []
        return Page(status, body, headers=[*cache, *(headers or [])])

    def _common(self, visit: Visit | None) -> dict[str, Any]:
        """What every page's frame shows: who is signed in, and the token of its forms."""
        cookies = visit.cookies if visit is not None else {}
        return {
            "auth": self.app.guard is not None,
            "who": visit.who if visit is not None else None,
            # sign-out is offered to a session the console began (not to a certificate)
            "session": SESSION_COOKIE in cookies,
            "csrf": cookies.get(CSRF_COOKIE, ""),
        }

    def _error(
        self,
        visit: Visit | None,
        status: int,
        title: str,
        message: str,
        headers: list[tuple[str, str]] | None = None,
    ) -> Page:
        body = self.templates.render(
            "error.html", status=status, title=title, message=message, **self._common(visit)
        )
        return Page(status, body, headers=headers)

    # -- pages ------------------------------------------------------------------------------

    async def _keys(self, visit: Visit) -> Page:
        query = visit.query
        text = (query.get("q") or "")[:MAX_FILTER_CHARS]
        prefix = (query.get("prefix") or "")[:MAX_FILTER_CHARS]
        tombstones = query.flag("all")
        group = _flag(query, "group", True)
        page = query.number("page", 1, INT_MAX, 1)
        assert page is not None
        who = visit.who
        if who is not None and who.anonymous and who.read.nothing:
            raise _SignInFirst
        infos = await self.app.read_infos(include_empty=tombstones)

        def build() -> dict[str, Any]:
            shown = infos
            if who is not None and not who.read.everything:
                shown = {key: info for key, info in infos.items() if who.can_read(key)}
            return views.key_list(shown, text, prefix, group, page, tombstones)

        return await self._rendered(visit, "keys.html", build)

    async def _key(self, visit: Visit, key: str) -> Page:
        query = visit.query
        version = query.number("version", 1, INT_MAX)
        before = query.number("before", 1, INT_MAX)
        indent = _flag(query, "indent", True)
        head = await self._head(key)
        window = views.history_window(head, version, before)
        shown, history = await asyncio.gather(
            self.app.read_commit(key, version or head.version),
            self.app.read_history(key, views.HISTORY_PER_PAGE + 1, window),
        )
        if shown is None:
            raise NotFoundError(f"Key {key!r} has no version {version}")
        return await self._rendered(
            visit,
            "key.html",
            lambda: views.key_page(key, head, shown, history, window, indent),
            restored=query.number("restored", 1, INT_MAX),
            restored_as=query.number("as", 1, INT_MAX),
            retry_seconds=self.retry_seconds,
            live_wait=int(LIVE_WAIT),
            may_write=visit.may_write(key),
        )

    async def _compare(self, visit: Visit, key: str) -> Page:
        query = visit.query
        head = await self._head(key)
        new_version = query.number("to", 1, INT_MAX, head.version)
        assert new_version is not None
        old_version = query.number("from", 1, INT_MAX, max(new_version - 1, 1))
        assert old_version is not None
        view = query.get("view") or "split"
        if view not in ("split", "unified"):
            raise BadRequestError("Invalid 'view' parameter (should be split or unified)")
        full = query.flag("full")
        indent = query.flag("indent")
        old, new = await self._versions(key, old_version, new_version)
        return await self._rendered(
            visit,
            "compare.html",
            lambda: {"diff": views.comparison(old, new, full, indent)},
            key=key,
            head=head,
            view=view,
            full=full,
            indent=indent,
            may_write=visit.may_write(key),
        )

    async def _revert_get(self, visit: Visit, key: str) -> Page:
        version = visit.query.number("version", 1, INT_MAX)
        if version is None:
            raise BadRequestError("Missing parameter: 'version' (the version to restore)")
        token, set_cookie = _csrf_token(visit)
        head, target = await self._versions(key, None, version)
        return await self._revert_page(
            visit, key, head, target, token, visit.cookies.get(AUTHOR_COOKIE, ""), "", set_cookie
        )

    async def _revert_page(
        self,
        visit: Visit,
        key: str,
        head: Commit,
        target: Commit,
        token: str,
        author: str,
        note: str,
        headers: list[tuple[str, str]],
        status: int = 200,
        error: str | None = None,
        meanwhile: Meanwhile | None = None,
    ) -> Page:
        def build() -> dict[str, Any]:
            return {
                "diff": views.comparison(head, target),
                "meanwhile_diff": (
                    views.comparison(meanwhile["base"], head) if meanwhile is not None else None
                ),
            }

        return await self._rendered(
            visit,
            "revert.html",
            build,
            status=status,
            headers=[("Cache-Control", "no-store"), *headers],
            key=key,
            head=head.info(),
            target=target.info(),
            token=token,
            author=author,
            note=note,
            error=error,
            meanwhile=meanwhile,
        )

    async def _revert_post(self, visit: Visit, key: str, receive: Receive) -> Page:
        form = await _read_form(visit.scope, receive)
        token = _checked_csrf(visit, form)
        if token is None:
            return self._expired(visit)
        version = _form_number(form, "version")
        base = _form_number(form, "base")
        note = (form.get("note") or "").strip()
        # With --auth the author is the principal, as on the API; without, whom the form names.
        who = visit.who
        author = who.name if who is not None else (form.get("author") or "").strip()
        try:
            visit.require(key, "write")
        except Refused as exc:
            self._audit(visit, key, str(base + 1), exc.status, None)
            raise
        except _SignInFirst:
            self._audit(visit, key, str(base + 1), 401, None)
            raise
        target = await self.app.read_commit(key, version)
        if target is None:
            raise NotFoundError(f"Key {key!r} has no version {version}")

        async def again(status: int, error: str, meanwhile: Meanwhile | None = None) -> Page:
            (head,) = await self._versions(key, None)
            return await self._revert_page(
                visit, key, head, target, token, author, note, [], status, error, meanwhile
            )

        if not author:
            self._audit(visit, key, str(base + 1), 400, target.payload)
            return await again(400, "Say who you are: every commit records its author.")
        comment = f"Revert to version {version}" + (f": {note}" if note else "")
        commit = Commit(key, base + 1, target.payload, author, comment, now())
        try:
            await self.app.commit(commit)
        except CommitOrderingError as exc:
            self._audit(visit, key, str(base + 1), 409, target.payload)
            return await self._conflict(key, base, exc, again)
        except (BadRequestError, PayloadTooLargeError, Refused) as exc:
            status = exc.status if isinstance(exc, Refused) else 413
            status = 400 if isinstance(exc, BadRequestError) else status
            self._audit(visit, key, str(base + 1), status, target.payload)
            return await again(status, str(exc))
        self._audit(visit, key, str(base + 1), 200, target.payload)
        target_url = render.ui_url("keys", key, restored=version, **{"as": base + 1})
        cookies = [] if who is not None else [_author_cookie(author, visit.scope)]
        return _redirect(target_url, 303, cookies)

    async def _conflict(self, key: str, base: int, exc: CommitOrderingError, again: _Again) -> Page:
        """The revert was based on version ``base``, but others committed since: show what they
        committed, and the revert's diff against the new head."""
        newer = exc.expected_version - 1 - base
        if newer <= 0:  # the head went back (a storage replaced?): nothing to explain
            return await again(409, str(exc))
        commits = await self.app.read_history(key, min(newer, MEANWHILE_SHOWN))
        (base_commit,) = await self._versions(key, base)
        return await again(
            409,
            f"Someone committed meanwhile: the key is at version {exc.expected_version - 1} "
            f"now, not {base}. Nothing was committed. Check the new difference below and "
            "confirm again.",
            {"base": base_commit, "commits": commits, "count": newer},
        )

    async def _download(self, visit: Visit, key: str) -> Page:
        version = visit.query.number("version", 1, INT_MAX)
        commit = await self.app.read_commit(key, version)
        if commit is None or commit.payload is None:
            raise NotFoundError("No payload to download: no such version, or a tombstone")
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", key)
        disposition = f"attachment; filename=\"{safe}\"; filename*=UTF-8''{quote(key, safe='')}"
        return Page(
            200,
            commit.payload,
            wire.BINARY,
            [("Content-Disposition", disposition), ("Cache-Control", "no-store")],
        )

    async def _head_json(self, visit: Visit, key: str, receive: Receive) -> Page:
        """The head's metadata; with ``?index=N``, once the head is above version N or
        ``wait`` seconds have passed (at most LIVE_WAIT): the key page's live notice."""
        index = visit.query.number("index", 0, INT_MAX)
        wait = min(parse_wait(visit.query.get("wait")), LIVE_WAIT)
        waiting = asyncio.ensure_future(self._newer_head(key, index, wait))
        gone = asyncio.ensure_future(_client_gone(receive))
        try:
            # A page that closes lets go of its request: stop waiting for it too.
            await asyncio.wait({waiting, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if not waiting.done():
            waiting.cancel()
            return Page(204, b"")  # nobody is there to read it
        found = waiting.result()
        if found is None:
            return Page(404, b'{"error":"Key not found"}\r\n', wire.JSON)
        meta = wire.json_body(found.meta())
        return Page(200, meta, wire.JSON, [("Cache-Control", "no-store")])

    async def _newer_head(self, key: str, index: int | None, wait: float) -> CommitInfo | None:
        """The head of ``key`` once it is above version ``index`` (None: at once), or as it is
        when ``wait`` seconds have passed; woken by the server's watch, as ?index=&wait= is."""
        if index is None:
            return await self.app.read_info(key)
        return await self.app.wait_for_head(key, index, wait)

    def _static(self, raw_name: bytes, query: Query) -> Page:
        found = self.static.get(raw_name.decode("ascii", "replace"))
        if found is None:
            raise NotFoundError("No such file")
        fresh = query.get("v") == found.version
        cache = "public, max-age=31536000, immutable" if fresh else "no-cache"
        return Page(200, found.body, found.content_type, [("Cache-Control", cache)])

    # -- signing in (--auth) ------------------------------------------------------------------

    def _identify(self, visit: Visit) -> Principal:
        """The visitor's principal: from the session cookie's token, else an Authorization
        header, else a TLS client certificate; anonymous without any."""
        guard = self.app.guard
        assert guard is not None
        tls = visit.scope.get("extensions", {}).get("tls", {})
        token = visit.cookies.get(SESSION_COOKIE)
        authorization = None if token else _header(visit.scope, b"authorization")
        credentials = Credentials(authorization, tls.get("client_cert_name"))
        if token:
            credentials.token = token  # as it was typed: no header encoding in between
        return guard.identify(credentials, visit.address)

    async def _sign_in_page(
        self, visit: Visit, status: int = 200, error: str | None = None
    ) -> Page:
        token, set_cookie = _csrf_token(visit)
        target = _local_target(visit.query.get("next"))
        return await self._rendered(
            visit,
            "signin.html",
            status=status,
            headers=[("Cache-Control", "no-store"), *set_cookie],
            token=token,
            target=target,
            expired=visit.query.flag("expired"),
            error=error,
        )

    async def _sign_in_post(self, visit: Visit, receive: Receive) -> Page:
        guard = self.app.guard
        assert guard is not None
        form = await _read_form(visit.scope, receive)
        if _checked_csrf(visit, form) is None:
            return self._expired(visit)
        secret = form.get("token") or ""
        target = _local_target(form.get("next"))
        if not secret.strip():
            return await self._sign_in_page(visit, 400, "Enter your token.")
        credentials = Credentials(None, None)
        credentials.token = secret.strip()
        try:
            who = guard.identify(credentials, visit.address)
        except Refused as exc:
            self._audit(visit, None, None, exc.status, None, failed=True)
            message = "That token is not valid." if exc.status == 401 else str(exc)
            return await self._sign_in_page(visit, exc.status, message)
        log.info("console: %s signed in from %s", who.name, visit.address)
        # A new form token with the new session, so no token seen before it carries over.
        headers = [
            ("Set-Cookie", _cookie(SESSION_COOKIE, secret.strip(), visit.scope)),
            ("Set-Cookie", _cookie(CSRF_COOKIE, secrets.token_urlsafe(24), visit.scope)),
        ]
        return _redirect(target, 303, headers)

    async def _sign_out(self, visit: Visit, receive: Receive) -> Page:
        form = await _read_form(visit.scope, receive)
        if _checked_csrf(visit, form) is None:
            return self._expired(visit)
        headers = [
            _clear_cookie(SESSION_COOKIE, visit.scope),
            _clear_cookie(CSRF_COOKIE, visit.scope),
        ]
        return _redirect(render.ui_url(), 303, headers)

    def _expired(self, visit: Visit) -> Page:
        return self._error(
            visit,
            403,
            "Form expired",
            "This form did not come from this console, or its session has ended. "
            "Open the page again and repeat what you did.",
        )

    def _audit(
        self,
        visit: Visit,
        key: str | None,
        version: str | None,
        status: int,
        payload: bytes | None,
        failed: bool = False,
    ) -> None:
        """A line in --audit-log for a commit attempt or a failed sign-in, as the API writes."""
        self.app.audit_write(
            principal=visit.who.name if visit.who is not None else None,
            address=visit.address,
            method="POST",
            key=key,
            version=version,
            status=status,
            payload=payload,
            failed_auth=failed,
        )

    # -- reads --------------------------------------------------------------------------------

    async def _head(self, key: str) -> CommitInfo:
        found = await self.app.read_info(key)  # metadata only, never the payload
        if found is None:
            raise NotFoundError(f"Key {key!r} not found")
        return found

    async def _versions(self, key: str, *versions: int | None) -> list[Commit]:
        """The commits of ``key`` at ``versions`` (None: the head); NotFoundError if one is
        missing."""
        found = await asyncio.gather(*(self.app.read_commit(key, v) for v in versions))
        commits: list[Commit] = []
        for version, commit in zip(versions, found, strict=True):
            if commit is None:
                raise NotFoundError(f"Key {key!r} has no version {version or ''}".rstrip())
            commits.append(commit)
        return commits


# -- helpers ------------------------------------------------------------------------------------


def _flag(query: Query, name: str, default: bool) -> bool:
    return query.flag(name) if query.get(name) is not None else default


def _redirect(location: str, status: int, headers: list[tuple[str, str]] | None = None) -> Page:
    return Page(status, b"", _HTML, [("Location", location), *(headers or [])])


def _local_target(target: str | None) -> str:
    """Where to go after signing in: a console page, never another site (an open redirect)."""
    if target and target.startswith(render.MOUNT + "/") and "\\" not in target:
        return target
    return render.ui_url()


def _header(scope: Scope, wanted: bytes) -> bytes | None:
    headers: Iterable[tuple[bytes, bytes]] = scope["headers"]
    for name, value in headers:
        if name == wanted:
            return value
    return None


def _cookies(scope: Scope) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in scope["headers"]:
        if name != b"cookie":
            continue
        for part in value.decode("latin-1").split(";"):
            cookie, _, content = part.strip().partition("=")
            if cookie in (CSRF_COOKIE, AUTHOR_COOKIE, SESSION_COOKIE) and cookie not in found:
                found[cookie] = unquote(content, errors="replace")
    return found


def _cookie(name: str, value: str, scope: Scope, max_age: int | None = None) -> str:
    # HttpOnly: no script needs them; SameSite=Strict: never sent along from another site.
    parts = [f"{name}={quote(value, safe='')}", f"Path={render.MOUNT}/", "HttpOnly"]
    parts.append("SameSite=Strict")
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if scope.get("scheme") == "https":
        parts.append("Secure")
    return "; ".join(parts)


def _clear_cookie(name: str, scope: Scope) -> tuple[str, str]:
    return ("Set-Cookie", _cookie(name, "", scope, max_age=0))


def _csrf_token(visit: Visit) -> tuple[str, list[tuple[str, str]]]:
    """The form token: the browser's CSRF cookie, or a new one (with the header that sets it).
    A page from another site can neither read the cookie nor make the browser send it."""
    token = visit.cookies.get(CSRF_COOKIE, "")
    if _TOKEN.fullmatch(token):
        return token, []
    token = secrets.token_urlsafe(24)
    return token, [("Set-Cookie", _cookie(CSRF_COOKIE, token, visit.scope))]


def _checked_csrf(visit: Visit, form: Query) -> str | None:
    """The form's CSRF token when it matches the cookie and the form came from this site;
    None otherwise."""
    token = visit.cookies.get(CSRF_COOKIE, "")
    sent = form.get("csrf") or ""
    if (
        _same_origin(visit.scope)
        and _TOKEN.fullmatch(token)
        and secrets.compare_digest(token.encode(), sent.encode())
    ):
        return token
    return None


def _author_cookie(author: str, scope: Scope) -> tuple[str, str]:
    # Remembered for the next form, for a year; it is a name, not a credential.
    return ("Set-Cookie", _cookie(AUTHOR_COOKIE, author, scope, max_age=365 * 86400))


def _same_origin(scope: Scope) -> bool:
    """False for a form a browser says came from another site. Browsers send Sec-Fetch-Site
    (which a page cannot forge); older ones only Origin, compared with Host."""
    site = _header(scope, b"sec-fetch-site")
    if site is not None:
        return site in (b"same-origin", b"none")
    origin = _header(scope, b"origin")
    if origin is None:
        return True  # not a browser's cross-site form: the token decides
    host = _header(scope, b"host") or b""
    return urlsplit(origin.decode("latin-1")).netloc.encode("latin-1").lower() == host.lower()


async def _read_form(scope: Scope, receive: Receive) -> Query:
    content_type = (_header(scope, b"content-type") or b"").split(b";")[0].strip().lower()
    if content_type != b"application/x-www-form-urlencoded":
        raise BadRequestError("Expected a form (application/x-www-form-urlencoded)")
    chunks: list[bytes] = []
    size = 0
    while True:
        try:
            message = await asyncio.wait_for(receive(), defaults.BODY_TIMEOUT)
        except TimeoutError:
            raise Refused(408, "Request timeout: the form did not arrive") from None
        if message["type"] == "http.disconnect":
            raise BadRequestError("Client went away before the whole form arrived")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            raise PayloadTooLargeError(f"Form too large: more than {MAX_FORM_BYTES} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return Query(b"".join(chunks))


async def _client_gone(receive: Receive) -> None:
    """Returns once the client has closed its connection."""
    while (await receive())["type"] != "http.disconnect":
        pass


def _form_number(form: Query, name: str) -> int:
    value = form.number(name, 1, INT_MAX)
    if value is None:
        raise BadRequestError(f"Missing form field: {name}")
    return value
