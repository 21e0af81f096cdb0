"""How the console shows a payload: as text, as JSON or YAML (indented and highlighted), or as
binary (its size and the first bytes in hex).

Payloads are attacker-controlled. Everything here returns ``Markup`` built only from escaped
pieces and the fixed ``<span class="…">`` tags it adds, so a template can insert it as it is.

Parsing is bounded as ``--validate`` bounds it (``validation.problem``: nesting depth, YAML
aliases), and only payloads up to a size are parsed or highlighted at all, so that no payload
makes a page expensive to render.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from markupsafe import Markup, escape

from rainer.commit import payload_text
from rainer.defaults import VALIDATE_INLINE_BYTES
from rainer.server import validation

#: Payloads up to this size are highlighted (and JSON indented); larger ones are plain text.
HIGHLIGHT_BYTES = 256 * 1024
#: The most of a payload a page shows; beyond it the page says so and offers the download.
SHOW_BYTES = 1024 * 1024
#: Largest JSON payload parsed for its structure (kind detection, the diff by path).
STRUCTURE_JSON_BYTES = 1024 * 1024
#: Largest YAML payload parsed: YAML is some hundred times slower to parse than JSON, so the
#: bound is the one under which the validator parses on a thread (about 60 ms at most).
STRUCTURE_YAML_BYTES = VALIDATE_INLINE_BYTES
#: Bytes shown in the hex preview of a binary payload.
HEX_PREVIEW_BYTES = 256

_YAML_NAMES = (".yaml", ".yml")
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def detect(key: str, text: str) -> tuple[str, Any]:
    """The kind of a text payload and its parsed value: ``json`` for a JSON object or array,
    ``yaml`` for a YAML mapping or sequence (or any text under a key named ``.yaml``/``.yml``),
    else ``text``. The value is UNPARSED when the text was not parsed (too large, or text).
    """
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        value = load("json", text)
        if isinstance(value, dict | list):
            return "json", value
    named = key.lower().endswith(_YAML_NAMES)
    if stripped:
        value = load("yaml", text)
        if named or (isinstance(value, dict | list) and value):
            return "yaml", value
    return ("yaml" if named else "text"), UNPARSED


class _Unparsed:
    """What ``load`` returns for a payload it cannot or will not parse."""


UNPARSED: Any = _Unparsed()


def load(kind: str, text: str) -> Any:
    """The JSON or YAML value of ``text``, or UNPARSED when it does not parse within the bounds
    (size, depth, aliases)."""
    limit = STRUCTURE_JSON_BYTES if kind == "json" else STRUCTURE_YAML_BYTES
    data = text.encode("utf-8")
    if len(data) > limit or validation.problem(kind, data) is not None:
        return UNPARSED
    try:
        if kind == "json":
            return json.loads(data)
        return yaml.load(data, Loader=_LOADER)
    except (ValueError, RecursionError, yaml.YAMLError):
        return UNPARSED


# -- showing a payload ---------------------------------------------------------------------------


@dataclass(slots=True)
class HexRow:
    offset: str
    hex: str
    ascii: str


@dataclass(slots=True)
class Shown:
    """A payload ready for a page."""

    kind: str  # empty | text | json | yaml | binary
    size: int
    html: Markup = field(default_factory=Markup)
    lines: int = 0
    #: only the first SHOW_BYTES are shown
    truncated: bool = False
    #: JSON re-indented (the bytes stored are as they were sent)
    indented: bool = False
    #: JSON that could be re-indented (offer both views)
    can_indent: bool = False
    hex_rows: list[HexRow] = field(default_factory=list)


def show(key: str, payload: bytes | None, indent: bool = True) -> Shown:
    """``payload`` (None: a tombstone) as a page shows it. JSON is indented when ``indent``."""
    if payload is None:
        return Shown("empty", 0)
    size = len(payload)
    text = payload_text(payload)
    if text is None:
        return Shown("binary", size, hex_rows=hex_rows(payload[:HEX_PREVIEW_BYTES]))
    if size > SHOW_BYTES:
        # Cut on a character boundary; the page offers the whole payload as a download.
        text = payload[:SHOW_BYTES].decode("utf-8", "ignore")
        return Shown("text", size, escape(text), text.count("\n") + 1, truncated=True)
    kind = detect(key, text)[0] if size <= HIGHLIGHT_BYTES else "text"
    if kind == "json":
        html = highlight_json(text, indent)
        return Shown("json", size, html, html.count("\n") + 1, indented=indent, can_indent=True)
    if kind == "yaml":
        return Shown("yaml", size, highlight_yaml(text), text.count("\n") + 1)
    return Shown("text", size, escape(text), text.count("\n") + 1)


def hex_rows(data: bytes) -> list[HexRow]:
    """A hex dump: offset, sixteen bytes in hex, and the printable ASCII ones."""
    rows = []
    for start in range(0, len(data), 16):
        chunk = data[start : start + 16]
        printable = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        rows.append(HexRow(f"{start:08x}", chunk.hex(" "), printable))
    return rows


def indent_json(text: str) -> str:
    """JSON text re-indented by two spaces, every token kept as it was written (numbers,
    escapes, duplicate keys); for diffing minified JSON line by line."""
    return "".join(piece for _, piece in _json_pieces(text, indent=True))


# -- highlighting --------------------------------------------------------------------------------

_JSON_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
    |(?P<str>"(?:[^"\\]|\\.)*")
    |(?P<lit>true|false|null|NaN|-?Infinity)
    |(?P<num>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)
    |(?P<punc>[{}\[\]:,])
    |(?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)


def _json_pieces(text: str, indent: bool) -> list[tuple[str | None, str]]:
    """(class, text) pieces of JSON, re-indented when ``indent``; class None for layout."""
    tokens = [(m.lastgroup or "other", m.group()) for m in _JSON_TOKEN.finditer(text)]
    if indent:
        tokens = [token for token in tokens if token[0] != "ws"]
    out: list[tuple[str | None, str]] = []
    depth = 0
    skip = False
    for index, (kind, value) in enumerate(tokens):
        if skip:
            skip = False
            continue
        following = tokens[index + 1][1] if index + 1 < len(tokens) else ""
        if kind == "str":
            # A string is a key when the next token (past any space) is a colon.
            after = index + 1
            while after < len(tokens) and tokens[after][0] == "ws":
                after += 1
            is_key = after < len(tokens) and tokens[after][1] == ":"
            out.append(("key" if is_key else "str", value))
        elif kind == "punc" and indent:
            if value in "{[":
                if following in ("}", "]"):  # an empty object or array stays on one line
                    out.append(("punc", value + following))
                    skip = True
                    continue
                depth += 1
                out.append(("punc", value))
                out.append((None, "\n" + "  " * depth))
            elif value in "}]":
                depth = max(depth - 1, 0)
                out.append((None, "\n" + "  " * depth))
                out.append(("punc", value))
            elif value == ",":
                out.append(("punc", value))
                out.append((None, "\n" + "  " * depth))
            else:
                out.append(("punc", ":"))
                out.append((None, " "))
        elif kind == "ws":
            out.append((None, value))
        else:
            out.append((kind, value))
    return out


def highlight_json(text: str, indent: bool = True) -> Markup:
    """JSON as highlighted, escaped HTML; re-indented when ``indent``."""
    return _markup(_json_pieces(text, indent))


_YAML_KEY = re.compile(
    r"""(?P<key>"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s#'"\[\]{},&*!|>%@`][^\n]*?)
        (?P<colon>:)(?=[ \t]|$)""",
    re.VERBOSE,
)
_YAML_VALUE = re.compile(
    r"""
    (?P<ws>[ \t]+)
    |(?P<comment>\#.*)
    |(?P<str>"(?:[^"\\]|\\.)*"?|'(?:[^']|'')*'?)
    |(?P<anchor>[&*][^\s,\[\]{}]+)
    |(?P<tag>![^\s,\[\]{}]*)
    |(?P<block>[|>][-+0-9]*(?=[ \t]|$))
    |(?P<punc>[\[\]{},]|[:?-](?=[ \t]|$))
    |(?P<plain>[^\s,\[\]{}\#][^\s,\[\]{}]*(?:[ \t]+[^\s,\[\]{}\#][^\s,\[\]{}]*)*)
    |(?P<other>.)
    """,
    re.VERBOSE,
)
# Plain scalars YAML 1.1 (PyYAML) reads as booleans, nulls or special floats.
_YAML_LITERALS = frozenset(
    variant
    for word in ("true", "false", "yes", "no", "on", "off", "null")
    for variant in (word, word.capitalize(), word.upper())
) | {"~", ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "-.inf", "-.Inf", "-.INF", "+.inf"}
_YAML_NUMBER = re.compile(
    r"[-+]?(?:0|[1-9][0-9_]*)(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?|0x[0-9a-fA-F_]+|0o?[0-7_]+"
)
_SEQUENCE_MARK = re.compile(r"-(?=[ \t]|$)[ \t]*")


def highlight_yaml(text: str) -> Markup:
    """YAML as highlighted, escaped HTML, line by line: keys, scalars, comments, anchors, tags.
    A lexical pass, not a parse: it never fails, whatever the text."""
    pieces: list[tuple[str | None, str]] = []
    block_indent: int | None = None  # inside a block scalar (| or >) started at this indent
    for number, line in enumerate(text.split("\n")):
        if number:
            pieces.append((None, "\n"))
        indent = len(line) - len(line.lstrip(" "))
        if block_indent is not None:
            if not line.strip() or indent > block_indent:
                pieces.append(("str", line))
                continue
            block_indent = None
        stripped = line.strip()
        if stripped.startswith("#") or stripped.startswith("%"):
            pieces.append(("comment", line))
            continue
        if stripped in ("---", "...") or line.startswith("--- "):
            pieces.append(("meta", line[:3]))
            rest, start = line[3:], 3
        else:
            pieces.append((None, line[:indent]))
            rest, start = line[indent:], indent
        # Sequence entries ("- - key: value"), then an optional key.
        while True:
            mark = _SEQUENCE_MARK.match(rest)
            if mark is None:
                break
            pieces.append(("punc", "-"))
            pieces.append((None, mark.group()[1:]))
            rest = rest[mark.end() :]
        key = _YAML_KEY.match(rest)
        if key is not None:
            pieces.append(("key", key.group("key")))
            pieces.append(("punc", ":"))
            rest = rest[key.end() :]
        last: str | None = None
        for match in _YAML_VALUE.finditer(rest):
            kind = match.lastgroup or "other"
            value = match.group()
            if kind == "plain":
                if value in _YAML_LITERALS:
                    kind = "lit"
                elif _YAML_NUMBER.fullmatch(value):
                    kind = "num"
                else:
                    kind = "str"
            elif kind == "other":
                kind = "str"
            pieces.append((None if kind == "ws" else kind, value))
            if kind not in ("ws", "comment"):
                last = kind
        if last == "block":
            block_indent = indent if start == indent else 0
    return _markup(pieces)


def _markup(pieces: list[tuple[str | None, str]]) -> Markup:
    out = []
    for kind, value in pieces:
        if not value:
            continue
        if kind is None:
            out.append(str(escape(value)))
        else:
            out.append(f'<span class="tk-{kind}">{escape(value)}</span>')
    return Markup("".join(out))
