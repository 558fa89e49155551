"""Fuzzing the CMCD decoder and mapping: any text (shaped like CMCD or not) decodes to a
dictionary or raises CmcdError with a reason, never another exception; a dictionary written in
the RFC 8941 syntax decodes to what was written; and every report, in every form the endpoint
takes (query or report line, CMCD-* headers, JSON object), maps to valid SPEC 4 events or to a
refusal with a fixed field and a reason, never to the catch-all "cannot be processed", with
metric labels from their fixed sets (bounded: 300 examples per test, no deadline; no servers)."""

from __future__ import annotations

import time
from typing import Any

import orjson
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from collectors.http import cmcd
from collectors.http.cmcd import MAX_CMCD_LEN, CmcdError, Item, OutOfRange
from collectors.http.cmcd_config import CmcdConfig
from collectors.http.cmcd_ingest import CmcdIngest, TextReport
from collectors.http.cmcd_metrics import KNOWN_KEYS, REASONS, CmcdMetrics
from playscope.config import Settings
from playscope.errors import ValidationError
from playscope.events import DIMENSIONS, MEASURES, validate_playback_event

NOW_MS = int(time.time() * 1000)
KEYS = sorted(KNOWN_KEYS - {"dimension"} | {"com.example-cdn", "pr", "rtp", "nrr", "cs", "ltc", "df", "msd"})
# refusals of a report name one of these (the client's key goes into the reason only)
REFUSAL_FIELDS = frozenset({"", "cmcd", "sid", "v", "ts", "event_id", "session_id", "type", *DIMENSIONS, *MEASURES,
                            "from_kbps", "to_kbps", "error_code", "fatal"})

keys = st.one_of(st.sampled_from(KEYS), st.from_regex(r"[a-z*][a-z0-9_\-.*]{0,8}", fullmatch=True))
safe_chars = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
strings = st.text(safe_chars, max_size=20)
tokens = st.from_regex(r"[A-Za-z*][A-Za-z0-9:/!#$%&'*+\-.^_`|~]{0,10}", fullmatch=True)
ints = st.one_of(st.integers(-(10 ** 15) + 1, 10 ** 15 - 1), st.integers(0, 50_000), st.just(NOW_MS))


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@st.composite
def bare_items(draw: st.DrawFn) -> str:
    """Well-formed values, and the ones that are almost right."""
    return draw(st.one_of(
        ints.map(str), st.tuples(ints, st.integers(0, 999)).map(lambda p: f"{p[0]}.{p[1]}"),
        strings.map(_quote), tokens, st.sampled_from(["?0", "?1", "?2", "?", "-", "1.", ".5", "1e5", "--1",
                                                      "9" * 16, "1." + "9" * 13, '"unterminated', '"bad\\x"',
                                                      '"\u00e9"', "'s'", "(", ")", "()", "(1 2", "(1;a=)"]),
        st.sampled_from(["s", "p", "r", "k", "a", "e", "f", "d", "w", "ps", "rr", "bc", "t", "v", "av", "m"]),
    ))


@st.composite
def cmcd_texts(draw: st.DrawFn) -> str:
    """Member lists as players send them (inner lists with parameters, bare keys, spaces and
    empty members), with a member garbled or the text cut now and then."""
    members = []
    for _ in range(draw(st.integers(0, 8))):
        key = draw(keys)
        shape = draw(st.integers(0, 3))
        if shape == 0:
            members.append(key)
        elif shape == 1:
            members.append(f"{key}={draw(bare_items())}")
        elif shape == 2:
            inner = " ".join(draw(bare_items()) + draw(st.sampled_from(["", ";v", ";a", ";x=1", ";v;a", ";=1"]))
                             for _ in range(draw(st.integers(0, 3))))
            members.append(f"{key}=({inner})")
        else:
            members.append(f"{key}={draw(bare_items())};{draw(keys)}")
    text = draw(st.sampled_from([",", ", ", ",,", " ,"])).join(members)
    if draw(st.integers(0, 4)) == 0:
        text = text[: draw(st.integers(0, len(text)))]
    return text


any_text = st.one_of(cmcd_texts(), cmcd_texts(), st.text(max_size=80), st.just("a=1," * (MAX_CMCD_LEN // 4 + 1)))


def _plain_value(value: Any) -> bool:
    if isinstance(value, list):
        return all(isinstance(item, Item) and _plain_value(item.value) and
                   all(_plain_value(v) for v in item.params.values()) for item in value)
    return isinstance(value, bool | int | float | str | OutOfRange)


@hsettings(max_examples=300, deadline=None)
@given(text=any_text)
def test_any_text_decodes_or_raises_cmcd_error_with_a_reason(text: str) -> None:
    try:
        decoded = cmcd.decode(text)
    except CmcdError as exc:
        assert exc.reason, f"a refusal without a reason for {text[:80]!r}"
        return
    assert all(isinstance(key, str) and key for key in decoded)
    assert all(_plain_value(value) for value in decoded.values()), decoded


@hsettings(max_examples=300, deadline=None)
@given(headers=st.dictionaries(st.sampled_from(["CMCD-Object", "cmcd-request", "CMCD-SESSION", "CMCD-Status",
                                                "CMCD-Other", "X-Playscope-Cdn"]), any_text, max_size=4))
def test_cmcd_headers_merge_or_raise_cmcd_error_with_a_reason(headers: dict[str, str]) -> None:
    try:
        merged = cmcd.merge_headers(headers)
    except CmcdError as exc:
        assert exc.reason
        return
    assert all(_plain_value(value) for value in merged.values())


members = st.dictionaries(keys, st.one_of(
    st.just(True), st.just(False), st.integers(-(10 ** 15) + 1, 10 ** 15 - 1), strings, tokens,
    st.tuples(st.integers(-999, 999), st.integers(0, 999)).map(lambda p: float(f"{p[0]}.{p[1]}"))), max_size=8)


def _write(values: dict[str, Any]) -> str:
    """RFC 8941 text for a dictionary of bare items (True as a bare key, as players write it)."""
    parts = []
    for key, value in values.items():
        if value is True:
            parts.append(key)
        elif value is False:
            parts.append(f"{key}=?0")
        elif isinstance(value, str) and value and value[0].isalpha() and _is_token(value):
            parts.append(f"{key}={value}")
        elif isinstance(value, str):
            parts.append(f"{key}={_quote(value)}")
        else:
            parts.append(f"{key}={value!r}")
    return ",".join(parts)


def _is_token(text: str) -> bool:
    return all((c.isalnum() and c.isascii()) or c in ":/!#$%&'*+-.^_`|~" for c in text)


@hsettings(max_examples=300, deadline=None)
@given(values=members)
def test_a_dictionary_written_in_cmcd_syntax_decodes_to_itself(values: dict[str, Any]) -> None:
    assert cmcd.decode(_write(values)) == values


def _ingest() -> tuple[CmcdIngest, CmcdMetrics]:
    config = CmcdConfig(cdn_hosts={"edge-1.example.net": "akamai", "*.cloudfront.net": "cloudfront"},
                        cdn_keys=["com.example-cdn"])
    metrics = CmcdMetrics(CollectorRegistry())
    return CmcdIngest(Settings(), config, metrics), metrics


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2 ** 63), 2 ** 64 - 1),
                      st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))
json_any = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)
hosts = st.one_of(st.sampled_from(["https://edge-1.example.net/seg.m4s", "http://a.cloudfront.net:8080/x",
                                   "http://[::1/seg", "http://[zz]/seg", "https://user@/x", "://", "http://",
                                   "http://%zz/", "http://xn--/", "seg_1.ts", "http://h:99999999/"]),
                  st.text(max_size=30).map(lambda t: f"http://{t}/s"))


@st.composite
def json_reports(draw: st.DrawFn) -> dict[str, Any]:
    """A CMCD JSON report: a v1 or v2 one that maps, with some keys odd, or any JSON object."""
    report: dict[str, Any] = {"sid": draw(st.one_of(st.just("s-1"), st.just("s-2"), st.text(max_size=8)))}
    if draw(st.booleans()):
        report.update(v=2, e=draw(st.sampled_from(["ps", "rr", "bc", "t", "e", "x"])),
                      sta=draw(st.sampled_from(["s", "p", "r", "k", "a", "e", "f", "d", "w", "z"])),
                      ts=draw(st.one_of(st.integers(NOW_MS - 60_000, NOW_MS + 60_000), st.just(NOW_MS - 86_400_000))))
    for key in draw(st.lists(st.sampled_from(KEYS), max_size=5, unique=True)):
        report[key] = draw(st.one_of(json_any, st.integers(-5, 50_000), hosts))
    return report


reports = st.one_of(
    cmcd_texts().map(TextReport), any_text.map(TextReport),
    st.dictionaries(st.sampled_from(["CMCD-Request", "CMCD-Object", "cmcd-session"]), cmcd_texts(),
                    max_size=3).map(TextReport),
    json_reports(), st.dictionaries(st.text(max_size=6), json_any, max_size=4), json_any,
)
dimensions = st.dictionaries(st.sampled_from(sorted(DIMENSIONS)), st.text(max_size=10), max_size=3)


@hsettings(max_examples=300, deadline=None)
@given(batch=st.lists(reports, min_size=1, max_size=6), extra=dimensions,
       client_shift=st.one_of(st.none(), st.integers(-10 ** 12, 10 ** 12)))
def test_every_report_maps_to_valid_events_or_a_refusal_with_a_reason(
        batch: list[Any], extra: dict[str, str], client_shift: int | None) -> None:
    ingest, metrics = _ingest()
    mapped = ingest.map_reports(batch, NOW_MS, extra, client_shift)
    assert len(mapped) == len(batch)
    for report, result in zip(batch, mapped, strict=True):
        if isinstance(result, ValidationError):
            assert result.reason and not result.reason.startswith("cannot be processed"), \
                f"an exception other than ValidationError for {report!r:.200}: {result.reason}"
            assert result.field in REFUSAL_FIELDS, result.field
            continue
        assert result, "a report that maps to no event and no refusal"
        for event in result:
            assert validate_playback_event(orjson.loads(orjson.dumps(event))) == event
    for sample in next(iter(metrics.ignored.collect())).samples:
        assert sample.labels["key"] in KNOWN_KEYS | {"other"} and sample.labels["reason"] in REASONS
