"""The commit model and its stored byte form, checked against forms written by hand."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from rainer.commit import Commit, CorruptCommitError, format_mtime, parse_mtime, validate_key
from rainer.errors import BadRequestError

EPOCH_2MS = datetime(1970, 1, 1, 0, 0, 0, 2000, tzinfo=UTC)


def test_decode_a_commit_written_by_hand_and_encode_it_back_byte_for_byte():
    header = (
        b'{"key":"hey","version":1,"author":"nobody","comment":"nothing",'
        b'"mtime":"1970-01-01T00:00:00.002Z","empty":false}'
    )
    stored = str(len(header)).encode() + b"\n" + header + b'\n{"s":"lol"}\n'
    commit = Commit.decode(stored)
    assert commit == Commit("hey", 1, b'{"s":"lol"}', "nobody", "nothing", EPOCH_2MS)
    assert commit.encode() == stored


def test_empty_commit_round_trips_with_no_payload_bytes():
    header = (
        b'{"key":"gone","version":3,"author":"a","comment":"",'
        b'"mtime":"2014-02-11T14:01:28.839-08:00","empty":true}'
    )
    stored = b"%d\n%s\n\n" % (len(header), header)
    commit = Commit.decode(stored)
    assert commit.empty and commit.payload is None
    assert commit.mtime == datetime(2014, 2, 11, 14, 1, 28, 839000, timezone(timedelta(hours=-8)))
    assert commit.encode() == stored


def test_payload_is_kept_verbatim_including_newlines_and_binary():
    payload = b"\x00\xff\nline\n\n"
    commit = Commit("bin", 2, payload, "me", "why", EPOCH_2MS)
    assert Commit.decode(commit.encode()).payload == payload


def test_non_ascii_metadata_is_utf8_in_the_header_and_length_counts_bytes():
    commit = Commit("ключ", 1, b"x", "Zoë", "naïve", EPOCH_2MS)
    stored = commit.encode()
    length, rest = stored.split(b"\n", 1)
    assert int(length) == len(rest[: int(length)]) and "Zoë".encode() in stored
    assert Commit.decode(stored) == commit


def test_header_without_empty_field_means_not_empty():
    header = (
        b'{"key":"k","version":1,"author":"a","comment":"c","mtime":"1970-01-01T00:00:00.000Z"}'
    )
    commit = Commit.decode(b"%d\n%s\nvalue\n" % (len(header), header))
    assert commit.payload == b"value" and not commit.empty


@pytest.mark.parametrize(
    "broken",
    [
        b"",
        b"abc\n{}\n\n",
        b"5\n{}\n\n",
        b"2\n{}\n\n",
        b'10\n{"key":1}\nx\n',
        b"200\n{}\n\n",
    ],
)
def test_decode_refuses_what_is_not_a_stored_commit(broken):
    with pytest.raises(CorruptCommitError):
        Commit.decode(broken)


@pytest.mark.parametrize(
    ("mtime", "text"),
    [
        (EPOCH_2MS, "1970-01-01T00:00:00.002Z"),
        (
            datetime(2014, 2, 11, 14, 1, 28, 839999, timezone(timedelta(hours=-8))),
            "2014-02-11T14:01:28.839-08:00",
        ),
        (
            datetime(2020, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))),
            "2020-05-01T12:00:00.000+05:30",
        ),
    ],
)
def test_mtime_is_written_with_milliseconds_and_zone(mtime, text):
    assert format_mtime(mtime) == text
    assert format_mtime(parse_mtime(text)) == text


def test_mtime_without_zone_is_utc_and_naive_datetimes_are_refused():
    assert parse_mtime("2020-01-01T00:00:00") == datetime(2020, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError):
        format_mtime(datetime(2020, 1, 1))
    with pytest.raises(ValueError):
        parse_mtime("yesterday")


@pytest.mark.parametrize("key", ["a", "app.config", "with space", "ünïcödé", "x" * 255, "-_~!"])
def test_valid_keys(key):
    assert validate_key(key) == key


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "empty"),
        ("a/b", "'/'"),
        (".", "'.'"),
        ("..", "'..'"),
        ("tab\there", "control character U+0009"),
        ("nul\x00", "control character U+0000"),
        ("del\x7f", "control character U+007F"),
        ("c1\x85", "control character U+0085"),
        ("é" * 128, "255 bytes"),
    ],
)
def test_invalid_keys_say_why(key, reason):
    with pytest.raises(BadRequestError, match="Invalid key") as caught:
        validate_key(key)
    assert reason in str(caught.value)


def _fields_formatted(mtime: datetime) -> str:
    """format_mtime written field by field: what the isoformat shortcut must equal."""
    text = (
        f"{mtime.year:04d}-{mtime.month:02d}-{mtime.day:02d}T"
        f"{mtime.hour:02d}:{mtime.minute:02d}:{mtime.second:02d}.{mtime.microsecond // 1000:03d}"
    )
    offset = mtime.utcoffset() or timedelta(0)
    if offset == timedelta(0):
        return text + "Z"
    seconds = int(offset.total_seconds())
    hours, minutes = divmod(abs(seconds) // 60, 60)
    return f"{text}{'+' if seconds >= 0 else '-'}{hours:02d}:{minutes:02d}"


def test_mtime_format_matches_field_by_field_formatting_for_any_time_and_zone():
    rng = random.Random(7)
    for _ in range(20_000):
        offset = rng.choice(
            [0, rng.randint(-1439, 1439) * 60, rng.uniform(-86399, 86399), rng.uniform(-1, 1)]
        )
        zone = UTC if offset == 0 else timezone(timedelta(seconds=offset))
        mtime = datetime(
            rng.randint(1, 9999),
            rng.randint(1, 12),
            rng.randint(1, 28),
            rng.randint(0, 23),
            rng.randint(0, 59),
            rng.randint(0, 59),
            rng.randint(0, 999_999),
            tzinfo=zone,
        )
        assert format_mtime(mtime) == _fields_formatted(mtime)


@pytest.mark.parametrize(
    "text",
    ["plain", 'quote " and \\ backslash', "tab\tnew\nline\r", "\x00\x1f\x7f", "ünï\u2028\u2029😀"],
)
def test_metadata_json_is_what_json_dumps_makes_of_the_metadata(text):
    mtime = parse_mtime("2014-02-11T14:01:28.839-08:00")
    for commit in (
        Commit(f"k{text}", 7, b"payload", text, text, mtime),
        Commit("k", 2**31 - 1, None, "a", text, mtime),
    ):
        expected = json.dumps(commit.meta(), separators=(",", ":"), ensure_ascii=False).encode()
        assert commit.meta_json() == expected
        assert commit.info().meta_json() == expected
        assert commit.encode() == b"%d\n%s\n%s\n" % (
            len(expected),
            expected,
            commit.payload or b"",
        )
        assert Commit.decode(commit.encode()) == commit


def test_a_commit_made_again_is_equal_whatever_it_made_before():
    # meta_json() is kept on the commit; it is no part of what the commit is.
    mtime = parse_mtime("1970-01-01T00:00:00.002Z")
    first = Commit("k", 1, b"x", "a", "", mtime)
    first.meta_json()
    again = Commit("k", 1, b"x", "a", "", mtime)
    assert first == again and hash(first) == hash(again) and repr(first) == repr(again)
