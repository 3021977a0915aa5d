"""Configuration messages a new user can act on, and configuration files that cannot hang or
confuse the reader (issue 14, item 12): a/an before type names, "did you mean", a UTF-8 byte
order mark, binary files, FIFOs."""

from __future__ import annotations

import os
import re
import time

import pytest
from miragen import config
from miragen.errors import ConfigError


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        config.parse_text(text, "t.toml")
    return info.value.problems


def _wrong_value(spec: config.Key) -> str:
    want = spec.type
    if want is str:
        return "7"
    if want is bool:
        return '"yes"'
    return "true" if want is int else '"x"'


def test_type_errors_use_the_right_article_for_every_key():
    bad_article = re.compile(r"\ba [aeiou]|\ban [^aeiou ]", re.IGNORECASE)
    for section, keys in config.SCHEMA.items():
        for key, spec in keys.items():
            (problem,) = _problems(f"[{section}]\n{key} = {_wrong_value(spec)}\n")
            assert problem.startswith(f"{section}.{key}: must be "), problem
            assert not bad_article.search(problem), problem
    for key, spec in config.TRIGGER_SCHEMA.items():
        (problem,) = _problems(f"[[trigger]]\n{key} = {_wrong_value(spec)}\n")
        assert not bad_article.search(problem), problem
    assert _problems("[audio]\nrate = true\n") == [
        "audio.rate: must be an integer (got a boolean: true)"
    ]
    assert _problems('[audio]\nfade_ms = "5"\n') == [
        "audio.fade_ms: must be a number (got a string: '5')"
    ]
    assert _problems("[audio]\nstrict = [1]\n")[0].startswith(
        "audio.strict: must be a boolean (true or false)"
    )


@pytest.mark.parametrize(
    "text,problem",
    [
        ("[audio]\nrat = 22050\n", "audio.rat: unknown key (did you mean 'rate'?)"),
        ("[audoi]\nrate = 22050\n", "audoi: unknown section (did you mean 'audio'?)"),
        ("[[trigger]]\nnot = 3\n", "trigger[0].not: unknown key (did you mean 'note'?)"),
        ('[audio]\ntransport = "sim"\n', "audio.transport: unknown key (it belongs in [deliver])"),
        ("rate = 22050\n", "rate: unknown key outside every [section] (put it under [audio])"),
        ("[audio]\nzzzzzz = 1\n", "audio.zzzzzz: unknown key"),  # nothing close: no guess
    ],
)
def test_did_you_mean(text, problem):
    assert _problems(text) == [problem]


def test_did_you_mean_on_the_command_line(cli, tmp_path):
    c = tmp_path / "m.toml"
    c.write_text("[audio]\nrat = 22050\n")
    r = cli("config", "check", str(c))
    assert r.returncode == 2 and b"audio.rat: unknown key (did you mean 'rate'?)" in r.stderr


def test_a_byte_order_mark_is_accepted(tmp_path, cli):
    c = tmp_path / "bom.toml"
    c.write_bytes(b"\xef\xbb\xbf[audio]\r\nrate = 22050\r\n")
    assert config.load(c)["audio"]["rate"] == 22050
    assert config.parse_text("\ufeff[audio]\nrate = 22050\n")["audio"]["rate"] == 22050
    r = cli("config", "check", str(c))
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize(
    "data,at",
    [
        (b"[audio]\nrate = 2\xff\xfe\n", 16),
        (b"\x89PNG\r\n\x1a\n\x00\x00", 0),
        (
            b"\xef\xbb\xbf[paths]\n\xc3",
            11,
        ),  # after a byte order mark the offset still counts from 0
    ],
)
def test_a_binary_config_is_one_line(tmp_path, cli, data, at):
    c = tmp_path / "bin.toml"
    c.write_bytes(data)
    with pytest.raises(ConfigError) as info:
        config.load(c)
    assert info.value.problems == [f"not a text file (not UTF-8 at byte {at})"]
    for args in (("config", "check", str(c)), ("config", "show", "--config", str(c))):
        r = cli(*args)
        err = r.stderr.decode()
        assert r.returncode == 2 and len(err.strip().splitlines()) == 1, err
        assert f"not a text file (not UTF-8 at byte {at})" in err and "codec" not in err


@pytest.mark.timeout(10)
def test_a_fifo_config_is_refused_at_once(tmp_path, cli):
    fifo = tmp_path / "m.toml"
    os.mkfifo(fifo)
    t0 = time.monotonic()
    r = cli("config", "check", str(fifo), timeout=8)
    assert r.returncode == 2 and b"FIFO" in r.stderr
    r = cli("deliver", "x.pcm", "--sim", "--config", str(fifo), timeout=8)
    assert r.returncode == 2 and b"FIFO" in r.stderr
    assert time.monotonic() - t0 < 8


def test_other_unreadable_configs(tmp_path, cli):
    with pytest.raises(ConfigError, match="not found"):
        config.load(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="folder"):
        config.load(tmp_path)
    with pytest.raises(ConfigError, match="empty configuration file name"):
        config.load("")
    r = cli("deliver", "x.pcm", "--sim", "--config", str(tmp_path))
    assert r.returncode == 2 and len(r.stderr.decode().strip().splitlines()) == 1


@pytest.mark.parametrize("value", ["", " ", "serial:", "raw:", "midi:", "serial:  ", "usb:x"])
def test_deliver_transport_needs_a_device(value):
    (problem,) = _problems(f'[deliver]\ntransport = "{value}"\n')
    assert problem.startswith("deliver.transport: ")
    assert "'sim'" in problem or "write" in problem


def test_midi_input_may_stay_empty():
    assert config.parse_text('[midi]\ninput = ""\n')["midi"]["input"] == ""
    assert _problems('[midi]\ninput = "raw:"\n')[0].startswith("midi.input: ")


def test_rate_range_is_the_one_rule():
    from miragen import limits

    lo = limits.TARGET_RATE_MIN
    assert config.parse_text(f"[audio]\nrate = {lo}\n")["audio"]["rate"] == lo
    (problem,) = _problems(f"[audio]\nrate = {limits.TARGET_RATE_MAX + 1}\n")
    assert problem.startswith("audio.rate: ")
    (problem,) = _problems(f"[audio]\nraw_rate = {limits.SOURCE_RATE_MIN - 1}\n")
    assert problem.startswith("audio.raw_rate: ")
