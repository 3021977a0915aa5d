"""Fuzzing the text parsers: the configuration, request files, untrusted names, MIDI triggers.

- ``miragen.config.parse_text``: any text ends in a complete, checked configuration or one
  ``ConfigError`` that names the offending key;
- ``miragen.service.requests.parse_request_file`` (TOML and JSON, nested, huge, not UTF-8):
  a complete request or one ``RequestError``;
- names from outside (file names, request names: ``..``, ``/``, control characters, bytes that
  are not UTF-8) always map to a single safe component inside the state folder;
- trigger matching never fails on any message the bounded MIDI splitter can produce.

Derandomized, no example database.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from miragen import config
from miragen.errors import ConfigError, MiragenError
from miragen.service import requests
from miragen.service import state as state_mod
from miragen.service import triggers as triggers_mod

N = int(os.environ.get("MIRAGEN_FUZZ_EXAMPLES", "400"))
EXAMPLE_SECONDS = 10.0


def fuzz(n: int = N) -> settings:
    return settings(
        max_examples=n,
        derandomize=not os.environ.get("MIRAGEN_FUZZ_RANDOM"),
        database=None,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.function_scoped_fixture,
        ],
    )


# --------------------------------------------------------------------------- a tiny TOML writer


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return _toml_str(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(type(v))


def _toml_str(v: str) -> str:
    # JSON's escapes (\\n, \\uXXXX, ...) are valid in TOML basic strings; DEL must be escaped too
    return json.dumps(v, ensure_ascii=False).replace("\x7f", "\\u007f")


def to_toml(doc: dict) -> str:
    lines = []
    for section, body in doc.items():
        if isinstance(body, list) and all(isinstance(t, dict) for t in body):
            for table in body:
                lines.append(f"[[{_toml_str(section)}]]")
                lines += [f"{_toml_str(k)} = {_toml_value(v)}" for k, v in table.items()]
        elif isinstance(body, dict):
            lines.append(f"[{_toml_str(section)}]")
            lines += [f"{_toml_str(k)} = {_toml_value(v)}" for k, v in body.items()]
        else:
            lines.insert(0, f"{_toml_str(section)} = {_toml_value(body)}")
    return "\n".join(lines) + "\n"


safe_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)
scalar = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([0, 1, -1, 16, 127, 128, 256, 65536, 65537, 4096, 10**7 + 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    safe_text,
    st.sampled_from(
        [
            "sim",
            "midi:",
            "midi:x",
            "serial:loop://",
            "raw:/dev/snd/midiC1D0",
            "F0 7D * F7",
            "zz",
            "",
            "tpdf",
            "wavegan",
            "pygan",
            "both",
            "disk",
            "sysex",
            "lower",
            "upper",
            "lower1",
            "DEBUG",
            "auto",
        ]
    ),
)
value = st.one_of(scalar, st.lists(scalar, max_size=3))


@st.composite
def config_doc(draw) -> dict:
    doc: dict = {}
    sections = list(config.SCHEMA)
    for _ in range(draw(st.integers(0, 5))):
        sec = draw(st.sampled_from(sections) | safe_text.filter(bool))
        keys = list(config.SCHEMA.get(sec, {})) or ["x"]
        body = doc.setdefault(sec, {}) if not isinstance(doc.get(sec), list) else {}
        for _ in range(draw(st.integers(0, 4))):
            body[draw(st.sampled_from(keys) | safe_text.filter(bool))] = draw(value)
    if draw(st.booleans()):
        tkeys = list(config.TRIGGER_SCHEMA)
        doc["trigger"] = [
            {
                draw(st.sampled_from(tkeys) | safe_text.filter(bool)): draw(value)
                for _ in range(draw(st.integers(0, 5)))
            }
            for _ in range(draw(st.integers(0, 3)))
        ]
    return doc


def _check_config_result(cfg: dict) -> None:
    for sec, keys in config.SCHEMA.items():
        for key, spec in keys.items():
            v = cfg[sec][key]
            assert config._check_value(f"{sec}.{key}", spec, v) is None, (sec, key, v)
    for t in cfg["trigger"]:
        assert set(t) == set(config.TRIGGER_SCHEMA)


def _parse_config(text: str) -> str:
    t0 = time.monotonic()
    try:
        cfg = config.parse_text(text, "fuzz.toml")
    except ConfigError as exc:
        assert exc.problems and str(exc).startswith("fuzz.toml: ")
        return "error"
    finally:
        assert time.monotonic() - t0 < EXAMPLE_SECONDS
    _check_config_result(cfg)
    return "ok"


@fuzz()
@given(doc=config_doc())
def test_config_documents_are_checked_completely(doc):
    text = to_toml(doc)
    outcome = _parse_config(text)
    unknown = [s for s in doc if s not in config.SCHEMA and s != "trigger"]
    if unknown:
        assert outcome == "error"
        with pytest.raises(ConfigError) as ei:
            config.parse_text(text, "fuzz.toml")
        for s in unknown:
            assert any(p.startswith(f"{s}: ") for p in ei.value.problems), (s, ei.value.problems)


@fuzz()
@given(data=st.data())
def test_mutated_default_config(data):
    text = config.default_text()
    lines = text.splitlines()
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(lines) - 1))
        op = data.draw(st.sampled_from(["replace_value", "drop", "dup", "garbage", "cut"]))
        if op == "replace_value" and "=" in lines[i] and not lines[i].startswith("#"):
            key = lines[i].split("=", 1)[0]
            lines[i] = key + "= " + _toml_value(data.draw(scalar))
        elif op == "drop":
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "garbage":
            lines.insert(i, data.draw(st.text(max_size=40)))
        else:
            lines[i] = lines[i][: data.draw(st.integers(0, len(lines[i])))]
        if not lines:
            break
    _parse_config("\n".join(lines))


@fuzz()
@given(text=st.text(max_size=400))
def test_random_config_text(text):
    _parse_config(text)


def test_deep_and_huge_config_text():
    for text in ("a = " + "[" * 50_000, "[paths]\n" + "x = [1]\n" * 100_000, "x=1\n" * 100_000):
        assert _parse_config(text) == "error"
    _parse_config(
        '[paths]\nstate = "' + "x" * 2_000_000 + '"\n'
    )  # odd but a string: either way, quickly


# --------------------------------------------------------------------------- request files

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | safe_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(safe_text, inner, max_size=3),
    max_leaves=8,
)


@st.composite
def request_doc(draw) -> dict:
    keys = list(requests.REQUEST_KEYS)
    doc = {}
    for _ in range(draw(st.integers(0, 6))):
        k = draw(st.sampled_from(keys) | safe_text)
        doc[k] = draw(
            st.one_of(
                value,
                st.sampled_from(
                    [
                        "../../etc/passwd",
                        "/abs/path",
                        "a/b",
                        "..",
                        "bass",
                        "x" * 300,
                        "\x00\x1b[2J",
                        "caf\u00e9",
                        "",
                    ]
                ),
            )
        )
    return doc


def _check_request(path: Path) -> str:
    t0 = time.monotonic()
    try:
        req = requests.parse_request_file(path)
    except requests.RequestError as exc:
        assert str(exc).strip() and len(str(exc)) < 4000
        return "error"
    finally:
        assert time.monotonic() - t0 < EXAMPLE_SECONDS
    assert set(req) == set(requests.REQUEST_KEYS)
    assert isinstance(req["count"], int) and 1 <= req["count"] <= 64
    assert req["class"] == "" or re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]*", req["class"])
    return "ok"


@fuzz()
@given(doc=request_doc(), as_json=st.booleans())
def test_request_documents(tmp_path_factory, doc, as_json):
    folder = tmp_path_factory.mktemp("rq")
    if as_json:
        p = folder / "r.json"
        p.write_text(json.dumps(doc), encoding="utf-8")
    else:
        p = folder / "r.toml"
        p.write_text(to_toml(doc), encoding="utf-8")
    _check_request(p)


@fuzz()
@given(doc=json_values)
def test_request_json_of_any_shape(tmp_path_factory, doc):
    p = tmp_path_factory.mktemp("rq") / "r.json"
    p.write_text(json.dumps(doc), encoding="utf-8")
    _check_request(p)


@fuzz()
@given(raw=st.binary(max_size=300), suffix=st.sampled_from([".toml", ".json", ".TOML", ".txt", ""]))
def test_request_bytes(tmp_path_factory, raw, suffix):
    p = tmp_path_factory.mktemp("rq") / f"r{suffix}"
    p.write_bytes(raw)
    _check_request(p)


def test_request_files_that_are_deep_huge_or_odd(tmp_path):
    cases = {
        "deep.json": "[" * 100_000,
        "deep2.json": '{"a":' * 50_000 + "1" + "}" * 50_000,
        "deep.toml": "a = " + "[" * 100_000,
        "bigint.json": '{"count": ' + "9" * 5000 + "}",
        "huge.json": '{"name": "' + "x" * (200 * 1024) + '"}',
        "nan.json": '{"count": NaN, "wavesample": Infinity}',
        "dupkeys.json": '{"count": 1, "count": 99}',
        "bom.json": "\ufeff{}",
        "list.toml": "count = [1, 2]",
    }
    for name, text in cases.items():
        p = tmp_path / name
        p.write_text(text, encoding="utf-8")
        assert _check_request(p) == "error", name
    p = tmp_path / "latin1.toml"
    p.write_bytes('name = "caf\xe9"'.encode("latin-1"))
    assert _check_request(p) == "error"


# --------------------------------------------------------------------------- untrusted names

hostile_names = st.one_of(
    st.text(max_size=120),
    st.binary(max_size=60).map(lambda b: os.fsdecode(b)),  # not UTF-8 → surrogate escapes
    st.lists(
        st.sampled_from(
            ["..", ".", "/", "a", "\x00", "\n", "\x1b", "~", "con", " ", "\\", "é", ".part"]
        ),
        max_size=12,
    ).map("".join),
)


@fuzz(500)
@given(name=hostile_names)
def test_names_from_outside_stay_one_safe_component(tmp_path_factory, name):
    safe = state_mod.safe_name(name)
    assert re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]*", safe), safe
    assert ".." not in safe and len(safe) <= 80
    cls = state_mod.class_name(name)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", cls) and len(cls) <= 40
    shown = state_mod.printable(name)
    assert shown.isascii() and shown.isprintable()
    root = tmp_path_factory.mktemp("st")
    sd = state_mod.StateDir(root)
    rec = sd.record_path(name)
    assert rec.parent == sd.records and rec.name.endswith(".json")
    assert os.path.realpath(rec).startswith(os.path.realpath(sd.records) + os.sep)
    sd.create()
    uname = requests.unique_name(sd, name)
    assert sd.record_path(uname).parent == sd.records


# --------------------------------------------------------------------------- trigger matching


@fuzz()
@given(doc=config_doc(), stream=st.binary(max_size=200))
def test_trigger_matching_never_fails(doc, stream):
    from miragen.transport.base import MidiStreamParser

    try:
        cfg = config.parse_text(to_toml({"trigger": doc.get("trigger", [])}))
    except ConfigError:
        return
    p = MidiStreamParser(max_message_bytes=64, max_queued=64)
    p.feed(stream)
    while (raw := p.pop()) is not None:
        msg = triggers_mod._message(raw)
        i = triggers_mod.first_match(cfg["trigger"], msg)
        assert i is None or 0 <= i < len(cfg["trigger"])
        if i is not None:
            try:
                requests.from_trigger(cfg["trigger"][i])
            except MiragenError:
                pass
