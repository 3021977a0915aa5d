from __future__ import annotations

import pytest
from miragen import config
from miragen.errors import ConfigError


def test_default_text_matches_schema():
    assert config.default_text() == config.generate_default_text(), (
        "regenerate data/default.toml: python -m miragen.config"
    )


def test_default_parses_to_defaults():
    assert config.parse_text(config.default_text()) == config.defaults()


def test_every_problem_is_named():
    text = """
[audio]
rate = 3
dither = "shaped"
bogus = 1
[deliver]
transport = "usb"
[nonsense]
x = 1
[[trigger]]
message = "note_on"
note = 300
colour = "red"
"""
    with pytest.raises(ConfigError) as info:
        config.parse_text(text, "t.toml")
    problems = "\n".join(info.value.problems)
    for needle in (
        "audio.rate",
        "audio.dither",
        "audio.bogus: unknown key",
        "deliver.transport",
        "nonsense: unknown section",
        "trigger[0].note",
        "trigger[0].colour: unknown key",
    ):
        assert needle in problems


def test_types_are_checked():
    with pytest.raises(ConfigError, match="audio.strict: must be a boolean"):
        config.parse_text("[audio]\nstrict = 1\n")
    with pytest.raises(ConfigError, match="audio.rate: must be an integer"):
        config.parse_text("[audio]\nrate = true\n")
    cfg = config.parse_text("[audio]\nfade_ms = 5\n")
    assert cfg["audio"]["fade_ms"] == 5.0 and isinstance(cfg["audio"]["fade_ms"], float)


def test_invalid_toml():
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.parse_text("[audio\n")


def test_cli_show_and_check(cli, tmp_path):
    r = cli("config", "show")
    assert r.returncode == 0 and b"[deliver]" in r.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text("[audio]\nrate = 1\nfoo = 2\n")
    r = cli("config", "check", str(bad))
    assert r.returncode != 0
    assert b"audio.rate" in r.stderr and b"audio.foo: unknown key" in r.stderr
    good = tmp_path / "good.toml"
    good.write_text("[audio]\nrate = 22050\n")
    assert cli("config", "check", str(good)).returncode == 0
    r = cli("config", "show", "--config", str(good))
    assert b"rate = 22050" in r.stdout
    assert cli("config", "show", "--config", str(tmp_path / "missing.toml")).returncode == 2


def test_sort_max_class_is_zero_or_a_class_that_can_be_split():
    assert config.validate({"daemon": {"sort_max_class": 0}})["daemon"]["sort_max_class"] == 0
    assert config.validate({"daemon": {"sort_max_class": 16}})["daemon"]["sort_max_class"] == 16
    with pytest.raises(ConfigError, match=r"sort_max_class: must be ≥ 16 or 0: off \(got 5\)"):
        config.validate({"daemon": {"sort_max_class": 5}})
