"""Numeric options are checked while the command line is parsed (usage error, exit 2, naming the
option and the allowed range), an empty device never becomes the simulated Mirage, and a
delivery to the simulated Mirage says so (issue 14, items 8 and 9)."""

from __future__ import annotations

import argparse
import json

import pytest
from miragen import config, limits
from miragen.cli import main
from miragen.commands import _args

PAGE = bytes(range(1, 129)) * 2  # one Mirage-ready page: taken byte for byte


@pytest.fixture
def page(tmp_path):
    p = tmp_path / "one.pcm"
    p.write_bytes(PAGE)
    return p


@pytest.fixture
def sim_config(tmp_path, monkeypatch):
    """A configuration whose transport is the simulated Mirage (whatever /etc holds)."""
    c = tmp_path / "sim.toml"
    c.write_text('[deliver]\ntransport = "sim"\n')
    monkeypatch.setenv("MIRAGEN_CONFIG", str(c))
    return c


EVALUATE = ["evaluate", "--gen", "G", "--train", "T", "--held", "H", "--kind", "cycle"]
SWEEP = ["sweep", "--engine", "toy", "--data", "D", "-o", "O", "--seconds", "1"]
SIM_LINE = "simulated Mirage (no instrument was reached): "

# (command words before the option, option, bad value, text the message must hold)
BAD_OPTIONS = [
    (["deliver", "IN", "--sim"], "--tries", "0", "1..20"),
    (["deliver", "IN", "--sim"], "--tries", "-1", "1..20"),
    (["deliver", "IN", "--sim"], "--tries", "two", "1..20"),
    (["deliver", "IN", "--sim"], "--ack-margin", "-1", "0.1..600"),
    (["deliver", "IN", "--sim"], "--ack-margin", "nan", "0.1..600"),
    (["deliver", "IN", "--sim"], "--ack-margin", "inf", "0.1..600"),
    (["deliver", "IN", "--serial", "loop://"], "--baud", "0", "300..4,000,000"),
    (["deliver", "IN", "--serial", "loop://"], "--baud", "-31250", "300..4,000,000"),
    (["deliver", "IN", "--serial", "loop://"], "--baud", "4000001", "300..4,000,000"),
    (["deliver", "IN", "--sim"], "--chunk-size", "0", "1..65,536"),
    (["deliver", "IN", "--sim"], "--chunk-gap-ms", "-1", "0..10,000"),
    (["deliver", "IN", "--sim"], "--wavesample", "0", "1..8"),
    (["deliver", "IN", "--sim"], "--wavesample", "9", "1..8"),
    (["deliver", "IN", "--sim"], "--rate", "1", "4,000..50,000"),
    (["deliver", "IN", "--sim"], "--rate", "50001", "4,000..50,000"),
    (["deliver", "IN", "--sim"], "--raw-rate", "999", "1,000..1,000,000"),
    (["deliver", "IN", "--sim"], "--raw-rate", "1000001", "1,000..1,000,000"),
    (["convert", "IN", "-o", "OUT"], "--rate", "1", "4,000..50,000"),
    (["convert", "IN", "-o", "OUT"], "--rate", "200000", "4,000..50,000"),
    (["convert", "IN", "-o", "OUT"], "--max-bytes", "100", "256..65,536"),
    (["convert", "IN", "-o", "OUT"], "--max-bytes", "65537", "256..65,536"),
    (["sysex", "encode", "wavesample", "IN", "-o", "OUT"], "--rate", "3999", "4,000..50,000"),
    (["disk", "write", "--template", "T", "-o", "OUT"], "--rate", "1", "4,000..50,000"),
    (["bitmap", "encode", "IN", "OUT"], "--size", "1", "2..4,096"),
    (["bitmap", "decode", "IN", "OUT"], "--length", "0", "1..1,048,576"),
    (["cluster", "DIR"], "--raw-rate", "0", "1,000..1,000,000"),
    (["cluster", "DIR"], "--seed", "-1", "0..4,294,967,295"),
    (EVALUATE, "--raw-rate", "5", "1,000"),
    (EVALUATE, "--seed", "-3", "0.."),
    (EVALUATE, "--allowance", "-1", "≥ 0"),
    (["evaluate", "--model", "M", "--train", "T", "--held", "H"], "-n", "0", "≥ 1"),
    (["daemon"], "--max-seconds", "0", "> 0"),
    (["daemon"], "--max-seconds", "-5", "> 0"),
    (["sweep", "--engine", "toy", "--data", "D", "-o", "O"], "--seconds", "0", "> 0"),
    (SWEEP, "--count", "0", "≥ 1"),
    (SWEEP, "--seed", "-1", "0.."),
    (["train", "--data", "D", "-o", "M"], "--steps", "0", "≥ 1"),
    (["train", "--data", "D", "-o", "M"], "--iterations", "-2", "≥ 1"),
    (["train", "--data", "D", "-o", "M"], "--seconds", "-1", "> 0"),
    (["generate", "MODEL", "-o", "OUT"], "-n", "0", "≥ 1"),
    (["generate", "MODEL", "-o", "OUT"], "--seed", "-1", "0.."),
    (["demo"], "--seconds", "0", "≥ 1"),
    (["sim", "--pty"], "--pages-per-wavesample", "33", "1..32"),
    (["sim", "--pty"], "--pages-per-wavesample", "0", "1..32"),
]


@pytest.mark.parametrize(
    "words,option,value,allowed", BAD_OPTIONS, ids=[f"{w[0]}{o}={v}" for w, o, v, _ in BAD_OPTIONS]
)
def test_bad_numeric_option_is_a_usage_error(words, option, value, allowed, capsys):
    with pytest.raises(SystemExit) as info:
        main([*words, option, value])
    assert info.value.code == 2
    err = capsys.readouterr().err
    line = err.strip().splitlines()[-1]
    assert f"argument {option}" in line and allowed in line and repr(value) in line, err
    assert "Traceback" not in err


def test_one_rule_for_rates_and_deliver_ranges():
    """The command line and the configuration accept the same values."""
    assert config.key_range("audio", "rate") == (limits.TARGET_RATE_MIN, limits.TARGET_RATE_MAX)
    assert config.key_range("audio", "raw_rate") == (limits.SOURCE_RATE_MIN, limits.SOURCE_RATE_MAX)
    rate = _args.target_rate()
    assert rate(str(limits.TARGET_RATE_MIN)) == limits.TARGET_RATE_MIN
    assert rate(str(limits.TARGET_RATE_MAX)) == limits.TARGET_RATE_MAX
    for key in ("tries", "baud", "chunk_size", "wavesample"):
        lo, hi = config.key_range("deliver", key)
        parse = _args.config_int("deliver", key)
        assert parse(str(lo)) == lo and parse(str(hi)) == hi
        for bad in (lo - 1, hi + 1):
            with pytest.raises(argparse.ArgumentTypeError):
                parse(str(bad))
            with pytest.raises(config.ConfigError):
                config.parse_text(f"[deliver]\n{key} = {bad}\n")


def test_boundary_values_are_accepted(cli, page, sim_config):
    r = cli(
        "deliver",
        str(page),
        "--sim",
        "--tries",
        "1",
        "--ack-margin",
        "0.1",
        "--chunk-gap-ms",
        "0",
        "--chunk-size",
        "256",
        "--wavesample",
        "8",
        "--rate",
        "4000",
        "--raw-rate",
        "1000",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["ok"] is True


def test_deliver_rate_1_is_refused_not_sent_flat(cli, tmp_path, sim_config):
    import numpy as np
    import soundfile as sf

    tone = tmp_path / "tone.wav"
    sf.write(tone, 0.5 * np.sin(np.arange(2000) / 10.0), 22050)
    r = cli("deliver", str(tone), "--sim", "--rate", "1", "--json")
    assert r.returncode == 2 and r.stdout == b""
    assert b"--rate" in r.stderr and b"4,000..50,000" in r.stderr


@pytest.mark.parametrize("option", ["--serial", "--raw", "--port"])
@pytest.mark.parametrize("value", ["", "  "])
def test_empty_device_is_an_error_not_the_simulator(cli, page, sim_config, option, value):
    r = cli("deliver", str(page), option, value, "--json")
    assert r.returncode == 2, (r.stdout, r.stderr)
    out = json.loads(r.stdout)
    assert out["ok"] is False and "sim" != out.get("transport") and "simulated" not in out
    err = r.stderr.decode()
    assert err.startswith("miragen: error: ") and option in err and "no device" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("spec", ["serial:", "raw:", "midi:", "serial:   ", ""])
def test_config_transport_without_a_device_is_refused(cli, page, tmp_path, spec):
    c = tmp_path / "m.toml"
    c.write_text(f'[deliver]\ntransport = "{spec}"\n')
    r = cli("deliver", str(page), "--config", str(c))
    assert r.returncode == 2 and r.stdout == b""
    err = r.stderr.decode()
    assert "deliver.transport" in err and "Traceback" not in err


def test_missing_or_regular_file_raw_device_is_a_usage_error(cli, page, tmp_path, sim_config):
    r = cli("deliver", str(page), "--raw", str(tmp_path / "midiC9D9"))
    assert r.returncode == 2 and b"raw MIDI device" in r.stderr and b"cannot open" in r.stderr
    victim = tmp_path / "notes.txt"
    victim.write_bytes(b"keep me")
    r = cli("deliver", str(page), "--raw", str(victim))
    assert r.returncode == 2 and b"regular file" in r.stderr
    assert victim.read_bytes() == b"keep me"


def test_sim_says_so_in_the_first_line(cli, page, sim_config):
    r = cli("deliver", str(page), "--sim")
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().splitlines()[0].startswith(SIM_LINE)
    assert b"(1 page)" in r.stdout
    r = cli("deliver", str(page))  # the configuration's 'sim'
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().splitlines()[0].startswith(SIM_LINE)
    assert r.stderr.decode().startswith("miragen: note: deliver.transport is 'sim'")
    for extra in (["--sim"], []):
        r = cli("deliver", str(page), "--json", *extra)
        out = json.loads(r.stdout)
        assert r.returncode == 0 and out["ok"]
        assert out["simulated"] is True and out["transport"] == "sim"


def test_a_real_transport_is_not_simulated(cli, page, sim_config):
    r = cli(
        "deliver", str(page), "--serial", "loop://", "--tries", "1", "--ack-margin", "0.1", "--json"
    )
    assert r.returncode == 1  # nobody answers on a loop: no ACK
    out = json.loads(r.stdout)
    assert out["simulated"] is False and out["transport"] == "serial:loop://"
    assert r.stderr.decode().startswith("miragen: error: delivery failed: no ACK")


def test_deliver_messages_use_the_common_prefixes(cli, page, sim_config):
    r = cli("deliver", str(page), "--sim-fault", "nak")
    assert r.returncode == 2
    assert r.stderr.decode().startswith("miragen: error: --sim-fault needs --sim")
    r = cli("deliver", str(page), "--sim", "--sim-fault", "gremlins")
    assert r.returncode == 2 and r.stderr.decode().startswith("miragen: error: --sim-fault: ")
    r = cli("deliver", str(page), "--sim", "--baud", "9600")
    assert r.returncode == 0 and b"miragen: warning: --baud 9600 is ignored" in r.stderr
    r = cli(
        "deliver", str(page), "--sim", "--sim-fault", "nak", "--ack-margin", "0.1", "--tries", "1"
    )
    assert r.returncode == 1
    assert r.stderr.decode().startswith("miragen: error: delivery to the simulated Mirage failed: ")
    assert b"miragen deliver:" not in r.stderr


def test_sim_command_messages_use_the_common_prefix(cli):
    r = cli("sim", "--pty", "--fault", "gremlins", timeout=60)
    assert r.returncode == 2 and r.stderr.decode().startswith("miragen: error: --fault: ")
