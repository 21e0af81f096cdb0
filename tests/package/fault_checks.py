"""The checks of test_faults.py, run on the recorded requests and on the journal read directly
from PostgreSQL, and the printed summary.

What is checked is what README.md and docs/zookeeper.md promise, no more:

- a 200 for a commit means it is durable in the database (nothing acknowledged is lost, and
  only commits a client may have been told about are in the journal);
- versions of a key are 1, 2, 3, ... (the primary key settles races);
- a mirror never goes back in time: head reads answered from the mirror of one server process
  only move forward; it may lag (so a read may answer an older version than one just
  acknowledged through another server), and an answer read from the database because the
  mirror lacks the key "can be a moment ahead" of the mirror's next answer;
- the database is the journal: a read answered from it is never older than a commit that was
  acknowledged before the read began, nor than an earlier answer of the same process;
- a late publish may bring a deleted key back for a moment (its server takes the node back as
  soon as it sees the newer commit), so a tombstoned key that reappears must be gone again
  within CALM_BOUND, or a healing bound when a fault came in between; without a fault, a mirror
  is never behind an acknowledged commit for longer than CALM_BOUND; and at the end the
  database, ZooKeeper and both mirrors agree on every key.
"""

from __future__ import annotations

import bisect
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from fault_run import PUBLISH_PERIOD, SESSION_TIMEOUT, Fault, Record

#: How many problems of one check are spelled out (the rest are counted).
SHOWN = 15

#: How long a tombstoned key may be answered again by a mirror that already answered it absent:
#: mirror lag plus the documented late-publish window, which the leader's next round (every
#: period, +20%) heals; a new leader after a lost session publishes at once. Fault time that
#: overlaps is added on top (a mirror cannot heal while ZooKeeper is away).
HEAL_BOUND = 2 * 1.2 * PUBLISH_PERIOD + 2 * SESSION_TIMEOUT

#: Without a fault in between, a publish is never lost (a server that loses a publishing race
#: reads the node again; a create overtaken by a tombstone takes its node back), so a mirror
#: behind an acknowledged commit, or a tombstoned key seen again, lasts milliseconds. This bound
#: is far above that, so that only a lost publish (a regression) fails it on a busy machine.
CALM_BOUND = 2.0

#: Errors are expected while a fault is in progress and this long after the cluster was seen
#: healthy again (a pooled database connection may only learn of a restart on its next use).
ERROR_GRACE = 3.0


@dataclass
class Row:
    """One row of the journal, parsed from its stored form (parsed here, not with the package's
    own decoder, so a bug there cannot hide a bug in the data)."""

    key: str
    version: int
    author: str
    comment: str
    empty: bool
    payload: bytes | None
    is_empty_column: int | None
    meta_key: str
    meta_version: int


def parse_stored(name: str, version: int, data: bytes, is_empty: int | None) -> Row:
    """``<length of H>\\n<H>\\n<payload>\\n`` where H is the metadata JSON."""
    length_end = data.index(b"\n")
    length = int(data[:length_end])
    header_end = length_end + 1 + length
    if data[header_end : header_end + 1] != b"\n" or not data.endswith(b"\n"):
        raise ValueError(f"bad framing in row {name!r} v{version}: {data[:80]!r}")
    meta = json.loads(data[length_end + 1 : header_end])
    empty = bool(meta["empty"])
    payload = None if empty else data[header_end + 1 : -1]
    return Row(
        key=name,
        version=version,
        author=meta["author"],
        comment=meta["comment"],
        empty=empty,
        payload=payload,
        is_empty_column=is_empty,
        meta_key=meta["key"],
        meta_version=int(meta["version"]),
    )


def read_journal(dsn: str, table: str) -> tuple[dict[str, list[Row]], list[str]]:
    """Every row of the table, by key, in version order, read with SQL rather than through a
    server; and a line for each row that does not parse."""
    import psycopg

    journal: dict[str, list[Row]] = defaultdict(list)
    unreadable: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as connection:
        rows = connection.execute(
            f"SELECT name, version, payload, is_empty FROM {table} ORDER BY name, version"
        ).fetchall()
    for name, version, payload, is_empty in rows:
        try:
            journal[name].append(parse_stored(name, version, bytes(payload), is_empty))
        except (ValueError, KeyError) as exc:
            unreadable.append(f"row {name} v{version} does not parse ({exc!r}): {payload[:120]!r}")
    return dict(journal), unreadable


def heads_of(journal: dict[str, list[Row]]) -> dict[str, Row]:
    return {key: rows[-1] for key, rows in journal.items() if rows}


@dataclass
class Check:
    """What one check looked at (``counts``) and what it found wrong (``problems``)."""

    title: str
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    #: Examples of allowed (documented) behaviour worth seeing, printed under the counts.
    notes: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        self.problems.append(text)

    def count(self, name: str, by: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + by

    def report(self) -> str:
        counts = ", ".join(f"{name}: {value}" for name, value in self.counts.items())
        verdict = "ok" if not self.problems else f"{len(self.problems)} PROBLEM(S)"
        lines = [f"  {self.title}: {verdict}" + (f" ({counts})" if counts else "")]
        for text in self.notes:
            lines.append("    . " + text.replace("\n", "\n      "))
        for text in self.problems[:SHOWN]:
            lines.append("    - " + text.replace("\n", "\n      "))
        if len(self.problems) > SHOWN:
            lines.append(f"    ... and {len(self.problems) - SHOWN} more")
        return "\n".join(lines)


class Checker:
    """Runs every check over one run's records, faults and journal."""

    def __init__(
        self,
        records: list[Record],
        faults: list[Fault],
        journal: dict[str, list[Row]],
        origin: float,
        unreadable: list[str] | None = None,
    ) -> None:
        self.records = records
        self.faults = faults
        self.journal = journal
        self.unreadable = unreadable or []
        self.origin = origin
        self.rows = {(row.key, row.version): row for rows in journal.values() for row in rows}
        self.reads = [r for r in records if r.head is not None]
        self.commits = [r for r in records if r.is_commit]

    def all(self) -> list[Check]:
        return [
            self.answers(),
            self.versions(),
            self.acknowledged(),
            self.journal_explained(),
            self.reads_match_journal(),
            self.reads_move_forward(),
            self.database_reads_not_stale(),
            self.mirror_lag(),
            self.tombstones_stay(),
        ]

    def _d(self, record: Record) -> str:
        return record.describe(self.origin)

    # -- statuses ------------------------------------------------------------------------------

    def answers(self) -> Check:
        """Every answer is one the contract allows; errors only while a fault is in progress."""
        check = Check("0 answers: statuses allowed, errors only during faults")
        windows = [(f.t_start, (f.t_end or float("inf")) + ERROR_GRACE) for f in self.faults]
        for record in self.records:
            allowed = {200, 404} if record.is_read else {200, 409}
            if record.error is not None and record.error.startswith("malformed"):
                check.problem(f"an answer that does not parse: {self._d(record)}")
            elif record.status in allowed:
                continue
            elif record.status is not None and record.status != 503:
                check.problem(f"unexpected status {record.status}: {self._d(record)}")
            elif record.error == "timeout":
                check.problem(f"no answer within the client's timeout: {self._d(record)}")
            elif any(start <= record.t1 and record.t0 <= end for start, end in windows):
                check.count("errors during faults")
            else:
                check.problem(f"an error while no fault was in progress: {self._d(record)}")
        return check

    # -- the journal ----------------------------------------------------------------------------

    def versions(self) -> Check:
        """1. Per key, versions 1..n with no gap and no duplicate; each row's stored metadata
        names its own key and version."""
        check = Check("1 journal versions are 1..n without gaps")
        check.problems += self.unreadable
        for key, rows in sorted(self.journal.items()):
            versions = [row.version for row in rows]
            check.count("keys")
            check.count("rows", len(rows))
            if versions != list(range(1, len(rows) + 1)):
                missing = sorted(set(range(1, max(versions) + 1)) - set(versions))
                doubled = sorted(v for v, n in Counter(versions).items() if n > 1)
                check.problem(f"key {key}: versions missing {missing}, duplicated {doubled}")
            for row in rows:
                if (row.meta_key, row.meta_version) != (key, row.version):
                    check.problem(
                        f"row {key} v{row.version} stores metadata of "
                        f"{row.meta_key} v{row.meta_version}"
                    )
                if row.is_empty_column is not None and bool(row.is_empty_column) != row.empty:
                    check.problem(f"row {key} v{row.version}: is_empty column disagrees")
        return check

    def acknowledged(self) -> Check:
        """2. Every commit answered 200 is in the journal at its version, exactly as sent, and
        the 200 said so."""
        check = Check("2 acknowledged commits are in the journal, exactly")
        for record in self.commits:
            if not record.acknowledged:
                continue
            check.count("acknowledged")
            if record.empty:
                check.count("of them tombstones")
            answered = (record.version, record.author, record.comment, record.empty)
            sent = (
                record.sent_version,
                record.sent_author,
                record.sent_comment,
                record.sent_payload is None,
            )
            if answered != sent:
                check.problem(f"the 200 describes another commit than sent: {self._d(record)}")
            row = self.rows.get((record.key, record.sent_version or 0))
            if row is None:
                check.problem(f"LOST: acknowledged, not in the journal: {self._d(record)}")
            elif (row.author, row.comment, row.payload) != (
                record.sent_author,
                record.sent_comment,
                record.sent_payload,
            ):
                check.problem(
                    f"LOST: acknowledged, but the journal holds another commit at "
                    f"{record.key} v{record.sent_version} (author={row.author}, "
                    f"comment={row.comment!r}, payload={_short(row.payload)}): {self._d(record)}"
                )
        return check

    def journal_explained(self) -> Check:
        """2b. Every row is the commit of exactly one attempt that was acknowledged or whose
        outcome is unknown: a 409, a refused connection or a 4xx never writes anything."""
        check = Check("2b every journal row comes from one attempt allowed to write it")
        by_author = {record.sent_author: record for record in self.commits}
        used: set[str] = set()
        for (key, version), row in sorted(self.rows.items()):
            record = by_author.get(row.author)
            if record is None:
                check.problem(f"row {key} v{version} by {row.author}: no attempt sent it")
                continue
            used.add(row.author)
            same = (record.key, record.sent_version, record.sent_comment, record.sent_payload)
            if same != (key, version, row.comment, row.payload):
                check.problem(f"row {key} v{version} differs from its attempt: {self._d(record)}")
            elif record.acknowledged:
                check.count("acknowledged")
            elif record.maybe_written:
                check.count("unknown outcome, written")
            elif record.status != 200:
                check.problem(
                    f"row {key} v{version} was written, but its attempt was answered "
                    f"{record.status or record.error}: {self._d(record)}"
                )
        unknown = [r for r in self.commits if r.maybe_written]
        check.count("unknown outcome, not written", sum(r.sent_author not in used for r in unknown))
        return check

    def reads_match_journal(self) -> Check:
        """Every head a read answered is the journal's commit at that version (author, comment,
        emptiness, and the payload for GET KEY): no answer is made up or mixed."""
        check = Check("3a every read answers a commit of the journal")
        for record in self.reads:
            if record.status != 200:
                continue
            check.count("reads answered 200")
            row = self.rows.get((record.key, record.version or 0))
            if row is None:
                check.problem(f"a read answered a version not in the journal: {self._d(record)}")
                continue
            if (row.author, row.comment, row.empty) != (
                record.author,
                record.comment,
                record.empty,
            ):
                check.problem(
                    f"a read answered another commit than the journal's at v{row.version} "
                    f"(author={row.author}): {self._d(record)}"
                )
            elif record.op == "get" and (row.payload or b"") != record.payload:
                check.problem(
                    f"a read answered another payload ({_short(record.payload)}) than the "
                    f"journal's {_short(row.payload)}: {self._d(record)}"
                )
        return check

    # -- reads over time ------------------------------------------------------------------------

    def _by_process_and_key(self) -> dict[tuple[tuple[str, int], str], list[Record]]:
        found: dict[tuple[tuple[str, int], str], list[Record]] = defaultdict(list)
        for record in self.reads:
            if record.process is not None:
                found[record.process, record.key].append(record)
        return found

    def reads_move_forward(self) -> Check:
        """3b. Within one server process, per key, a head read never answers an older version
        than a read that ended before it began, except where the docs allow it: an answer from
        the database (the mirror lacked the key) may be ahead of the mirror's next answer."""
        check = Check("3b reads of one server process never go back in time")
        for (process, key), reads in sorted(self._by_process_and_key().items()):
            check.count("reads")
            # Sweep in time: earlier answers (by end) bound later reads (by start).
            ends = sorted(reads, key=lambda r: r.t1)
            best_any: Record | None = None  # highest from the mirror: bounds every later read
            best_db: Record | None = None  # highest from the database: bounds database reads
            position = 0
            for read in sorted(reads, key=lambda r: r.t0):
                while position < len(ends) and ends[position].t1 < read.t0:
                    done = ends[position]
                    position += 1
                    if done.cached:
                        best_any = _higher(best_any, done)
                    else:
                        best_db = _higher(best_db, done)
                bound = best_any if read.cached else _higher(best_any, best_db)
                if bound is not None and (read.head or 0) < (bound.head or 0):
                    check.problem(
                        f"key {key} on {process[0]}#{process[1]} went back from "
                        f"v{bound.head} to v{read.head}:\n  earlier {self._d(bound)}\n"
                        f"  later   {self._d(read)}"
                    )
                elif read.cached and best_db is not None and (read.head or 0) < (best_db.head or 0):
                    check.count("mirror behind an earlier database answer (documented)")
        check.counts["reads"] = sum(1 for r in self.reads if r.process is not None)
        return check

    def _acks_by_key(self) -> dict[str, list[Record]]:
        """Acknowledged commits per key, by the time they were acknowledged."""
        acks: dict[str, list[Record]] = defaultdict(list)
        for record in self.commits:
            if record.acknowledged:
                acks[record.key].append(record)
        for found in acks.values():
            found.sort(key=lambda r: r.t1)
        return acks

    def _newest_acks(self) -> dict[str, tuple[list[float], list[Record]]]:
        """Per key: the acknowledgement times, and for each i the highest version among the
        first i+1 acknowledgements (non-decreasing, so it can be bisected by version)."""
        found: dict[str, tuple[list[float], list[Record]]] = {}
        for key, acks in self._acks_by_key().items():
            best: list[Record] = []
            for record in acks:
                newer = not best or (record.version or 0) > (best[-1].version or 0)
                best.append(record if newer else best[-1])
            found[key] = ([r.t1 for r in acks], best)
        return found

    def database_reads_not_stale(self) -> Check:
        """3c. A read answered from the database (no X-Rainer-Cached) is never older than a
        commit acknowledged before the read began (reads from a mirror may lag: see 3d)."""
        check = Check("3c database reads never miss an acknowledged commit")
        newest_acks = self._newest_acks()
        for read in self.reads:
            if read.cached:
                continue
            check.count("database reads")
            ends, best = newest_acks.get(read.key, ([], []))
            count = bisect.bisect_left(ends, read.t0)
            if count and (read.head or 0) < (best[count - 1].version or 0):
                newest = best[count - 1]
                check.problem(
                    f"key {read.key}: a database read answered v{read.head} after "
                    f"v{newest.version} was acknowledged:\n  ack  {self._d(newest)}\n"
                    f"  read {self._d(read)}"
                )
        return check

    def mirror_lag(self) -> Check:
        """3d. How far mirrors lagged behind acknowledged commits. The docs say a mirror may lag
        briefly; while a fault keeps ZooKeeper or a server away, until the leader's next round.
        An episode is one process answering older than one acknowledged commit; its lag is how
        long after that 200 the last such answer began. With no fault at all between the 200 and
        the answer, propagation takes milliseconds, and a lag over CALM_BOUND fails: it means a
        publish was lost."""
        check = Check("3d mirror lag (measured; without a fault, over CALM_BOUND fails)")
        newest_acks = self._newest_acks()
        windows = [(f.t_start, f.t_end or float("inf")) for f in self.faults]
        episodes: dict[tuple[object, ...], tuple[float, Record, Record]] = {}
        calm: dict[tuple[object, ...], tuple[float, Record, Record]] = {}
        for read in self.reads:
            if not read.cached:
                continue
            check.count("mirror reads")
            ends, best = newest_acks.get(read.key, ([], []))
            count = bisect.bisect_left(ends, read.t0)
            head = read.head or 0
            if not count or head >= (best[count - 1].version or 0):
                continue
            check.count("older than an earlier 200")
            # the first acknowledged commit newer than the answer: the lag counts from its 200
            versions = [r.version or 0 for r in best[:count]]
            missed = best[bisect.bisect_right(versions, head)]
            if missed.process is not None and missed.process == read.process:
                check.count("older than the same process's own 200")
            lag = read.t0 - missed.t1
            episode = (read.process, read.key, missed.sent_author)
            if episode not in episodes or episodes[episode][0] < lag:
                episodes[episode] = (lag, missed, read)
            quiet = not any(s <= read.t1 and missed.t1 <= e for s, e in windows)
            if quiet and (episode not in calm or calm[episode][0] < lag):
                calm[episode] = (lag, missed, read)
        check.count("episodes", len(episodes))
        if episodes:
            check.count("longest ms", round(max(found[0] for found in episodes.values()) * 1000))
        worst = sorted(calm.values(), key=lambda found: -found[0])
        check.count("episodes without a fault", len(worst))
        check.count("of them over 100 ms", sum(lag > 0.1 for lag, _, _ in worst))
        check.count("over 1 s", sum(lag > 1.0 for lag, _, _ in worst))
        if worst:
            check.count("longest of them ms", round(worst[0][0] * 1000))
        for lag, missed, read in worst:
            if lag > CALM_BOUND:
                check.problem(
                    f"{read.key}: a mirror answered v{read.head} {lag:.1f} s after "
                    f"v{missed.version} was acknowledged, with no fault in between (a lost "
                    f"publish?):\n  ack  {self._d(missed)}\n  read {self._d(read)}"
                )
        for lag, missed, read in worst[:3]:
            check.notes.append(
                f"{read.key}: answered v{read.head} {lag * 1000:.0f} ms after "
                f"v{missed.version} was acknowledged, no fault in between:\n"
                f"  ack  {self._d(missed)}\n  read {self._d(read)}"
            )
        return check

    def tombstones_stay(self) -> Check:
        """4. Once a tombstone at v was acknowledged and a server process then answered the key
        as absent, that process answers no non-empty commit below v again, except for a moment
        from its mirror (lag, or the documented late publish the leader's next round undoes)."""
        check = Check("4 tombstoned keys do not come back")
        tombstones = sorted(
            (r for r in self.commits if r.acknowledged and r.sent_payload is None),
            key=lambda r: r.t1,
        )
        check.count("acknowledged tombstones", len(tombstones))
        worst_late, worst = 0.0, ""
        for (process, key), reads in sorted(self._by_process_and_key().items()):
            reads = sorted(reads, key=lambda r: r.t0)
            starts = [r.t0 for r in reads]
            # next_absent[i]: the first read at or after i that answered absent;
            # lowest[i]: the lowest non-empty head answered at or after i (to skip clean runs).
            next_absent: list[Record | None] = [None] * (len(reads) + 1)
            lowest = [float("inf")] * (len(reads) + 1)
            for i in range(len(reads) - 1, -1, -1):
                read = reads[i]
                next_absent[i] = read if read.absent else next_absent[i + 1]
                lowest[i] = lowest[i + 1] if read.absent else min(lowest[i + 1], read.head or 0)
            for tomb in tombstones:
                if tomb.key != key:
                    continue
                v = tomb.sent_version or 0
                absent = next_absent[bisect.bisect_right(starts, tomb.t1)]
                if absent is None:
                    continue
                check.count("(tombstone, process) pairs answered absent")
                first = bisect.bisect_right(starts, absent.t1)
                if lowest[first] >= v:
                    continue
                for read in reads[first:]:
                    if read.absent or (read.head or 0) >= v:
                        continue
                    late = read.t0 - tomb.t1
                    faulty = self._fault_time(tomb.t1, read.t0)
                    allowed = HEAL_BOUND + faulty if faulty else CALM_BOUND
                    if read.cached and late <= allowed:
                        check.count("older answers from a mirror within the healing bound")
                        if late > worst_late:
                            worst_late = late
                            worst = (
                                f"{key} on {process[0]}#{process[1]}: v{read.head} again "
                                f"{late * 1000:.0f} ms after tombstone v{v} was acknowledged:"
                                f"\n  tombstone {self._d(tomb)}\n  absent    {self._d(absent)}"
                                f"\n  then      {self._d(read)}"
                            )
                        continue
                    where = "from the database" if not read.cached else f"{late:.1f} s later"
                    check.problem(
                        f"key {key} came back on {process[0]}#{process[1]} ({where}, allowed "
                        f"{allowed:.1f} s):\n  tombstone {self._d(tomb)}\n"
                        f"  absent    {self._d(absent)}\n  then      {self._d(read)}"
                    )
        if worst:
            check.notes.append("longest allowed: " + worst)
        return check

    def _fault_time(self, start: float, end: float) -> float:
        total = 0.0
        for fault in self.faults:
            overlap = min(end, fault.t_end or end) - max(start, fault.t_start)
            total += max(0.0, overlap)
        return total


def _higher(best: Record | None, record: Record | None) -> Record | None:
    """Whichever of two reads answered the higher head (either may be None)."""
    if best is None or (record is not None and (record.head or 0) > (best.head or 0)):
        return record
    return best


def _short(payload: bytes | None) -> str:
    if payload is None:
        return "none (empty commit)"
    return repr(payload[:60]) + ("..." if len(payload) > 60 else "")


# -- the final state -------------------------------------------------------------------------------


def final_state_problems(
    heads: dict[str, Row],
    children: list[str],
    nodes: dict[str, bytes | None],
    answers: dict[str, dict[str, tuple[int, dict[str, str], bytes]]],
    listings: dict[str, dict | None],
) -> list[str]:
    """5. Per key: the ZooKeeper node holds the journal's head (none for a tombstone), and each
    server's head read answers it (from its mirror when non-empty) and lists it accordingly.

    ``children``: the keys ZooKeeper has nodes for; ``nodes``: key -> node bytes or None;
    ``answers``: server -> key -> GET KEY (status,
    headers, body); ``listings``: server -> GET PREFIX JSON, or None when it did not answer.
    """
    problems = [f"{key}: a ZooKeeper node for a key the journal lacks" for key in children]
    problems = [text for text in problems if text.split(":")[0] not in heads]
    for key, head in sorted(heads.items()):
        want = f"v{head.version}" + (" (tombstone)" if head.empty else "")
        node = nodes.get(key)
        if head.empty:
            if node is not None:
                problems.append(f"{key}: journal head {want}, ZooKeeper node holds {node[:120]!r}")
        else:
            expected: tuple[object, ...] | None = None
            if node is not None:
                try:
                    got = parse_stored(key, head.version, node, None)
                    expected = (got.meta_version, got.author, got.comment, got.payload)
                except (ValueError, KeyError) as exc:
                    expected = ("unparseable", repr(exc))
            if expected != (head.version, head.author, head.comment, head.payload):
                shown = None if node is None else node[:120]
                problems.append(f"{key}: journal head {want}, ZooKeeper node {shown!r}")
        for server, by_key in sorted(answers.items()):
            status, headers, body = by_key[key]
            seen = (
                status,
                headers.get("x-rainer-version"),
                headers.get("x-rainer-empty"),
                headers.get("x-rainer-author"),
                body,
                headers.get("x-rainer-cached"),
            )
            wanted = (
                200,
                str(head.version),
                "Yes" if head.empty else "No",
                head.author,
                head.payload or b"",
                None if head.empty else "Yes",
            )
            if seen != wanted:
                problems.append(
                    f"{key}: journal head {want}, server {server} answers status {status} "
                    f"v{seen[1]} empty={seen[2]} author={seen[3]} cached={seen[5]}"
                )
            listing = listings.get(server)
            listed = None if listing is None else listing.get(key, {}).get("version")
            if listed != (None if head.empty else head.version):
                problems.append(f"{key}: journal head {want}, server {server} lists v{listed}")
    return problems


# -- the summary -----------------------------------------------------------------------------------


def operations_table(records: list[Record]) -> str:
    """Operations by kind and status (``cached`` for head reads answered from a mirror)."""
    table: dict[str, Counter[str]] = defaultdict(Counter)
    for record in records:
        outcome = str(record.status) if record.status is not None else record.error or "?"
        if record.error and record.status is not None:
            outcome += " " + record.error.split(":")[0]
        table[record.op][outcome] += 1
        if record.cached:
            table[record.op]["(cached)"] += 1
    lines = []
    for op in ("meta", "get", "commit", "tombstone"):
        found = table.get(op, Counter())
        total = sum(n for outcome, n in found.items() if outcome != "(cached)")
        parts = ", ".join(f"{outcome}: {n}" for outcome, n in sorted(found.items()))
        lines.append(f"  {op:<9} {total:6d}   {parts}")
    slowest = sorted(records, key=lambda r: r.t0 - r.t1)[:3]
    if slowest:
        shown = "; ".join(
            f"{r.t1 - r.t0:.2f} s ({r.op} {r.key} on {r.server}: {r.status or r.error})"
            for r in slowest
        )
        lines.append(f"  slowest answers: {shown}")
    return "\n".join(lines)


def faults_table(faults: list[Fault], origin: float) -> str:
    lines = []
    for fault in faults:
        end = f"{fault.t_end - origin:6.2f}" if fault.t_end is not None else "  none"
        took = f"{fault.t_end - fault.t_start:5.2f} s" if fault.t_end is not None else "no end"
        lines.append(
            f"  +{fault.t_start - origin:6.2f} .. +{end} s ({took})  {fault.kind}: {fault.note}"
        )
    return "\n".join(lines) or "  none"
