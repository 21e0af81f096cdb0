"""Schema-driven fuzzing: schemathesis against a real ``rainer serve`` on a fresh SQLite file.

The run is schemathesis's own engine, the one its command line drives: the description's
examples, the coverage phase (boundary values, every undocumented method, each required header
left out), random valid and invalid requests per operation, then stateful sequences that follow
the description's links from a commit to its reads. Every response goes through every check that
applies to an API without authentication.

Afterwards the server must still answer; then it is stopped, a new one is started on the same
database file, and every commit the run saw acknowledged with 200 must read back exactly.
"""

from __future__ import annotations

import base64
import json
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import pytest
import schemathesis
from http_util import call
from schemathesis.engine import events, from_schema
from schemathesis.engine.recorder import Interaction, ScenarioRecorder

from harness._service import ServiceError
from harness.rainer import RainerServer

SEED = 20140211  # the day in the original's example mtime
MAX_EXAMPLES = 50  # per operation and phase: the whole file takes 30-45 s on 2 cores

# What the contract answers to input the description calls invalid. 413 and 431 are there
# because some limits are in bytes, which JSON Schema cannot count.
INVALID_INPUT_STATUSES = ["400", "404", "405", "409", "413", "415", "431"]

STATEFUL = {"generation": {"max-examples": 2 * MAX_EXAMPLES}}
STATEFUL_ONLY = {
    "examples": {"enabled": False},
    "coverage": {"enabled": False},
    "fuzzing": {"enabled": False},
    "stateful": STATEFUL,
}
STATEFUL_REQUESTS = 400  # stateful rounds go on until they have sent this many requests...
STATEFUL_ROUNDS = 8  # ... or this many rounds have run

CONFIG: dict[str, Any] = {
    "seed": SEED,
    "continue-on-failure": True,  # every failure of an operation, not just its first
    "workers": 1,  # one request at a time, so what Steering knows of the heads stays true
    "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
    # Commits are where the state is: more of them, and many sequences that start with one.
    "operations": [{"include-method": "POST", "generation": {"max-examples": 4 * MAX_EXAMPLES}}],
    "phases": {"stateful": STATEFUL},
    "checks": {
        # A valid-looking request may still be refused: keys and authors are limited in UTF-8
        # bytes, and a tombstone with a body is 400. Those 400s are documented, so
        # status_code_conformance still judges them.
        "positive_data_acceptance": {"enabled": False},
        "negative_data_rejection": {"expected-statuses": INVALID_INPUT_STATUSES},
        "missing_required_header": {"expected-statuses": ["400"]},
    },
}

_HEADER_SAFE = frozenset(chr(code) for code in range(0x20, 0x7F))
_YES = ("yes", "true", "1")


@dataclass(frozen=True)
class Acknowledged:
    """A commit the server answered 200 for: what the request sent, and the metadata answered."""

    request: str
    payload: bytes | None
    author: str
    comment: str
    meta: dict[str, Any]


@dataclass
class Finding:
    """One kind of failure: how often it came up, and the first request that showed it."""

    message: str
    request: str
    count: int = 0


@dataclass
class FuzzRun:
    """What one run sent, what came back, and what broke."""

    requests: int = 0
    rounds: int = 0
    operations: set[str] = field(default_factory=set)
    statuses: Counter[int] = field(default_factory=Counter)
    phases: Counter[str] = field(default_factory=Counter)
    findings: dict[str, Finding] = field(default_factory=dict)
    server_errors: list[str] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)
    engine_errors: list[str] = field(default_factory=list)
    acknowledged: dict[tuple[str, int], Acknowledged] = field(default_factory=dict)

    def find(self, what: str, message: str, request: str) -> None:
        self.findings.setdefault(what, Finding(message, request)).count += 1

    def summary(self) -> str:
        statuses = " ".join(f"{status}x{n}" for status, n in sorted(self.statuses.items()))
        phases = ", ".join(f"{phase} {n}" for phase, n in sorted(self.phases.items()))
        return (
            f"fuzz: {len(self.operations)} operations, {self.requests} requests ({phases}; "
            f"{self.rounds} rounds); "
            f"statuses {statuses}; {len(self.acknowledged)} commits acknowledged; "
            f"{len(self.findings)} kinds of failure"
        )

    def report(self) -> str:
        return "\n".join(
            f"{what} (x{finding.count})\n    {finding.message}\n    {finding.request}"
            for what, finding in sorted(self.findings.items())
        )


class Steering:
    """Nudges some valid POSTs towards commits the server can accept.

    Left alone, nearly every generated commit is refused: a random version is almost never the
    head plus one, and the optional headers that must repeat the path rarely do. Those refusals
    are worth sending too, so only some cases change, picked by chance from the seed and the case,
    and never an invalid one (that would make it valid and fool negative_data_rejection).
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.heads: dict[str, int] = {}

    def steer(self, case: Any) -> Any:
        if case.method in ("GET", "HEAD") and case.query:
            # A feed never ends and a blocking read waits its full time: the fuzz run takes a
            # feed off and keeps waits short (test_watch covers both).
            if "watch" in case.query:
                case.query["watch"] = "no"
            if "wait" in case.query or "index" in case.query:
                case.query["wait"] = "10ms"  # (without a wait, an index waits 5 minutes)
            return case
        if case.method != "POST" or case.meta is None or not case.meta.generation.mode.is_positive:
            return case
        if "key" not in (case.path_parameters or {}):
            return case  # a change set: left as generated
        # The choices follow from the case itself, not from a shared sequence: Hypothesis
        # replays cases (to shrink, to check a failure), and a replay must be steered alike.
        headers = case.headers if case.headers is not None else {}
        drawn = repr((self.seed, case.path_parameters, sorted(headers.items()), case.body))
        chance = random.Random(drawn)
        roll = chance.random
        # Path parameters arrive percent-encoded, as they will be sent.
        if self.heads and roll() < 0.3:
            case.path_parameters["key"] = quote(chance.choice(sorted(self.heads)), safe="")
        key = unquote(case.path_parameters["key"])
        if roll() < 0.7:
            case.path_parameters["version"] = self.heads.get(key, 0) + 1
        if "X-Rainer-Key" in headers and roll() < 0.8:
            if set(key) <= _HEADER_SAFE and key == key.strip():
                headers["X-Rainer-Key"] = key
            else:  # not as requests sends a header: Latin-1, without spaces at either end
                del headers["X-Rainer-Key"]
        if "X-Rainer-Version" in headers and roll() < 0.8:
            headers["X-Rainer-Version"] = str(case.path_parameters["version"])
        if str(headers.get("X-Rainer-Empty", "no")).lower() in _YES and roll() < 0.8:
            headers["X-Rainer-Empty"] = "no"
        return case

    def observe(self, case: Any, response: Any) -> None:
        if case.method == "POST" and response.status_code == 200:
            answered = response.json()  # one commit's metadata, or a change set's list of them
            for meta in answered if isinstance(answered, list) else [answered]:
                self.heads[meta["key"]] = max(self.heads.get(meta["key"], 0), meta["version"])


def fuzz(server: RainerServer) -> FuzzRun:
    """Run schemathesis's engine against ``server``, then more stateful rounds; collect it all.

    A stateful round ends early whenever Hypothesis finds that replaying a scenario no longer
    draws the same steps, which is bound to happen against a server whose state moved on (a
    commit that succeeded the first time conflicts the second). So the rounds go on, each with
    the next seed, until the stateful phase has sent STATEFUL_REQUESTS requests.
    """
    run = FuzzRun()
    steering = Steering(SEED)
    _execute(run, server, steering, CONFIG)
    for round_ in range(1, STATEFUL_ROUNDS):
        if run.phases["stateful"] >= STATEFUL_REQUESTS:
            break
        _execute(run, server, steering, {**CONFIG, "seed": SEED + round_, "phases": STATEFUL_ONLY})
    return run


def _execute(run: FuzzRun, server: RainerServer, steering: Steering, config: dict) -> None:
    run.rounds += 1
    loaded = schemathesis.Config.from_dict(config)
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json", config=loaded)

    # Hooks are registered on this schema only, so nothing leaks into other tests. schemathesis
    # tags hook functions with attributes, which bound methods cannot take: hence the wrappers.
    @schema.hook
    def map_case(context: Any, case: Any) -> Any:
        return steering.steer(case)

    @schema.hook
    def after_call(context: Any, case: Any, response: Any) -> None:
        steering.observe(case, response)

    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            _collect(run, event.recorder, str(event.phase.value))
        elif isinstance(event, events.FuzzScenarioFinished):
            _collect(run, event.recorder, "fuzz")
        elif isinstance(event, events.NonFatalError):
            run.engine_errors.append(f"{event.label}: {event.info.message}")
        elif isinstance(event, events.FatalError):
            run.engine_errors.append(f"fatal: {event.exception!r}")


def _collect(run: FuzzRun, recorder: ScenarioRecorder, phase: str) -> None:
    for case_id, node in recorder.cases.items():
        run.operations.add(node.value.operation.label)
        interaction = recorder.interactions.get(case_id)
        if interaction is None:
            continue
        run.requests += 1
        run.phases[phase] += 1
        response = interaction.response
        if response is None:
            run.unanswered.append(describe(interaction))
            continue
        run.statuses[response.status_code] += 1
        if response.status_code >= 500:
            run.server_errors.append(describe(interaction))
        if interaction.request.method == "POST" and response.status_code == 200:
            _acknowledge(run, interaction)
    for case_id, checks in recorder.checks.items():
        for check in checks:
            if check.failure_info is None:
                continue
            failure = check.failure_info.failure
            interaction = recorder.interactions.get(case_id)
            run.find(
                f"{check.name}: {failure.title} [{failure.operation}]",
                " / ".join(line for line in failure.message.splitlines()[:3] if line),
                describe(interaction) if interaction is not None else "(no request recorded)",
            )


def _acknowledge(run: FuzzRun, interaction: Interaction) -> None:
    assert interaction.response is not None
    answered = interaction.response.json()
    headers = {name.lower(): values[0] for name, values in interaction.request.headers.items()}
    if isinstance(answered, list):  # a change set: each change as it was sent
        changes = json.loads(interaction.request.body or b"{}")["changes"]
        sent = [
            (
                None
                if change.get("empty")
                else change["payload_utf8"].encode()
                if "payload_utf8" in change
                else base64.b64decode(change["payload_base64"]),
                change.get("comment", headers.get("x-rainer-comment", "")),
            )
            for change in changes
        ]
    else:
        answered = [answered]
        sent = [(interaction.request.body or b"", headers.get("x-rainer-comment", ""))]
    for meta, (payload, comment) in zip(answered, sent, strict=True):
        commit = Acknowledged(
            request=describe(interaction),
            payload=None if meta["empty"] else payload,
            author=headers["x-rainer-author"],
            comment=comment,
            meta=meta,
        )
        earlier = run.acknowledged.setdefault((meta["key"], meta["version"]), commit)
        if earlier is not commit:  # two 200s for one version: one of them was lost
            run.find("one version acknowledged twice", commit.request, earlier.request)


def describe(interaction: Interaction) -> str:
    """A request and its answer, with what is needed to send it again by hand."""
    request = interaction.request
    sent = {
        name: values[0]
        for name, values in request.headers.items()
        if name.lower().startswith("x-rainer") or name.lower() == "content-type"
    }
    answer = "no answer"
    if interaction.response is not None:
        answer = f"{interaction.response.status_code} {interaction.response.content[:200]!r}"
    url = urlsplit(request.uri)
    target = url.path + (f"?{url.query}" if url.query else "")
    body = (request.body or b"")[:200]
    return f"{request.method} {target} headers={sent} body={body!r} -> {answer}"


def read_back(diary: str, acknowledged: Iterable[Acknowledged]) -> list[str]:
    """Read every acknowledged commit from ``diary``; return the differences found."""
    problems = []
    newest: dict[str, int] = {}
    for commit in acknowledged:
        key, version = commit.meta["key"], commit.meta["version"]
        newest[key] = max(newest.get(key, 0), version)
        url = f"{diary}/{quote(key, safe='')}/{version}"
        meta = call("GET", url + "/meta")
        if meta.status != 200 or meta.json() != commit.meta:
            problems.append(
                f"GET {url}/meta -> {meta.status} {meta.body[:300]!r}, not {commit.meta}"
            )
        elif (commit.meta["author"], commit.meta["comment"]) != (commit.author, commit.comment):
            problems.append(f"author or comment not as sent: {commit.request}")
        payload = call("GET", url)
        expected = commit.payload or b""
        if payload.status != 200 or payload.body != expected:
            problems.append(
                f"GET {url} -> {payload.status} {payload.body[:200]!r}, not {expected!r}"
            )
    listed = call("GET", f"{diary}?all=yes")
    heads = {key: meta["version"] for key, meta in listed.json().items()}
    if heads != newest:  # the run was the only writer, so the list holds exactly its commits
        problems.append(
            f"the heads listed after the restart {heads} != those acknowledged {newest}"
        )
    return problems


@pytest.mark.parametrize("options", [[], ["--validate", "yaml"]], ids=["plain", "validate-yaml"])
def test_fuzz_finds_nothing_and_loses_nothing(
    tmp_path: Path, options: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    database = ["--database", f"sqlite:///{tmp_path / 'rainer.db'}"]
    with RainerServer(database + options) as server:
        run = fuzz(server)
        with capsys.disabled():  # the summary shows in every run, passed or failed
            print(f"\n{' '.join(options) or 'no options'}: {run.summary()}")
        health = call("GET", server.url + "/healthz")
        listed = call("GET", server.diary_url)
        exit_code = server.stop()
        # The tracebacks of any 5xx are in the server's log, which goes with its folder.
        log = server.log_path.read_text(errors="replace") if run.server_errors else ""
    # Everything is checked before anything is asserted, so one failing run reports it all.
    problems = [f"engine error: {error}" for error in run.engine_errors]
    problems += [f"no answer: {request}" for request in run.unanswered]
    if run.server_errors:  # each kind is in the findings too; these are the exact requests
        problems.append(f"{len(run.server_errors)} answers of 500 or more; the first ones:")
        problems += run.server_errors[:10]
        problems.append("the end of the server's log:\n" + log[-6000:])
    if run.findings:
        problems.append(run.report())
    for reply, request in ((health, "GET /healthz"), (listed, "GET /diary")):
        if reply.status != 200:
            problems.append(f"{request} after the run -> {reply.status} {reply.body[:300]!r}")
    if exit_code != 0:
        problems.append(f"the server exited with {exit_code} on SIGTERM, not 0")
    if not run.acknowledged:
        problems.append("the run committed nothing, so there was nothing to read back")
    try:
        with RainerServer(database + options) as restarted:
            problems += read_back(restarted.diary_url, run.acknowledged.values())
    except ServiceError as exc:
        problems.append(f"no server would start again on the database the run left: {exc}")
    assert not problems, "\n".join(problems)
