"""CMCD (CTA-5004) decoding: the RFC 8941 dictionary syntax players send, in every form.

v1 and v2 share one wire syntax: ``key=value`` members separated by commas, where a bare key is
``true``, strings are quoted, tokens are bare (``ot=m``), and v2 carries inner lists with
parameters (``br=(450;v 32;a)``). The decoder is deliberately lenient about what real players
send (spaces after commas, trailing commas, empty members) and strict about everything else:
anything it cannot read raises :class:`CmcdError` naming the key, never another exception. A
number too long for RFC 8941 decodes to :class:`OutOfRange`, so one absurd value costs only its
own key, not the report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from playscope.errors import ValidationError

CMCD_HEADERS = ("CMCD-Object", "CMCD-Request", "CMCD-Session", "CMCD-Status")
MAX_CMCD_LEN = 16 * 1024

_KEY = re.compile(r"[a-z*][a-z0-9_\-.*]*")
_NUMBER = re.compile(r"-?(\d+)(\.\d+)?")
MAX_INT_DIGITS = 15  # RFC 8941 integers
MAX_FRACTION_DIGITS = 12
_TOKEN = re.compile(r"[A-Za-z*][A-Za-z0-9:/!#$%&'*+\-.^_`|~]*")


class CmcdError(ValidationError):
    """A CMCD payload that cannot be decoded; ``field`` is the CMCD key at fault."""


@dataclass(frozen=True)
class OutOfRange:
    """A number RFC 8941 cannot hold (a 20-digit ``ts``): the mapping ignores that key alone."""

    text: str


@dataclass(frozen=True)
class Item:
    """One member of an inner list: its value and its parameters (``450;v`` -> 450, {"v": True})."""

    value: Any
    params: dict[str, Any] = field(default_factory=dict)


def decode(text: str) -> dict[str, Any]:
    """Decode one CMCD dictionary (a query value, a header value or a v2 report line)."""
    if len(text) > MAX_CMCD_LEN:
        raise CmcdError("", f"CMCD payload longer than {MAX_CMCD_LEN} characters")
    out: dict[str, Any] = {}
    parser = _Parser(text)
    while True:
        parser.skip_space()
        if parser.done():
            return out
        if parser.peek() == ",":  # empty member: tolerated
            parser.pos += 1
            continue
        key = parser.key()
        if parser.peek() == "=":
            parser.pos += 1
            value = parser.inner_list(key) if parser.peek() == "(" else parser.bare_item(key)
        else:
            value = True
        parser.params(key)  # parameters on a top-level member carry nothing CMCD uses
        out[key] = value
        parser.skip_space()
        if parser.done():
            return out
        if parser.peek() != ",":
            raise CmcdError(key, f"expected ',' after {key!r} at position {parser.pos}")
        parser.pos += 1


def merge_headers(headers: dict[str, str]) -> dict[str, Any]:
    """Decode and merge the four CMCD-* headers (header names compared without case)."""
    wanted = {name.lower() for name in CMCD_HEADERS}
    merged: dict[str, Any] = {}
    for name, value in headers.items():
        if name.lower() in wanted:
            merged.update(decode(value))
    return merged


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def done(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t":
            self.pos += 1

    def key(self) -> str:
        match = _KEY.match(self.text, self.pos)
        if not match:
            shown = self.text[self.pos : self.pos + 10]
            raise CmcdError("", f"expected a lower-case key at position {self.pos}, got {shown!r}")
        self.pos = match.end()
        return match.group()

    def params(self, key: str) -> dict[str, Any]:
        params: dict[str, Any] = {}
        while self.peek() == ";":
            self.pos += 1
            self.skip_space()
            name = self.key()
            if self.peek() == "=":
                self.pos += 1
                params[name] = self.bare_item(key)
            else:
                params[name] = True
        return params

    def inner_list(self, key: str = "") -> list[Item]:
        self.pos += 1  # "("
        items: list[Item] = []
        while True:
            self.skip_space()
            if self.peek() == ")":
                self.pos += 1
                return items
            if self.done():
                raise CmcdError(key, "unterminated inner list")
            value = self.bare_item(key)
            items.append(Item(value, self.params(key)))
            if self.done():
                raise CmcdError(key, "unterminated inner list")
            if self.peek() not in (" ", ")"):
                raise CmcdError(key, f"unexpected {self.peek()!r} in inner list")

    def bare_item(self, key: str) -> Any:
        char = self.peek()
        if char == '"':
            return self._string(key)
        if char == "?":
            flag = self.text[self.pos + 1 : self.pos + 2]
            if flag not in ("0", "1"):
                raise CmcdError(key, "a boolean must be ?0 or ?1")
            self.pos += 2
            return flag == "1"
        if char == "-" or char.isdigit():
            match = _NUMBER.match(self.text, self.pos)
            if not match:
                raise CmcdError(key, "malformed number")
            self.pos = match.end()
            whole, fraction = match.group(1), match.group(2)
            if len(whole) > MAX_INT_DIGITS or (fraction and len(fraction) - 1 > MAX_FRACTION_DIGITS):
                return OutOfRange(match.group()[:24])
            return float(match.group()) if fraction else int(match.group())
        match = _TOKEN.match(self.text, self.pos)
        if not match:
            raise CmcdError(key, f"unreadable value at position {self.pos}")
        self.pos = match.end()
        return match.group()

    def _string(self, key: str) -> str:
        self.pos += 1
        chars: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            self.pos += 1
            if char == "\\":
                if self.pos >= len(self.text) or self.text[self.pos] not in '"\\':
                    raise CmcdError(key, "bad escape in string")
                chars.append(self.text[self.pos])
                self.pos += 1
            elif char == '"':
                return "".join(chars)
            elif not " " <= char <= "~":
                raise CmcdError(key, "strings must be printable ASCII")
            else:
                chars.append(char)
        raise CmcdError(key, "unterminated string")
