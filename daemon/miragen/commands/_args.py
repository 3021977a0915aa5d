"""Argparse ``type=`` factories: numeric options are checked while the command line is parsed.

A value outside its range is a usage error (exit 2) that names the option and the allowed
range, e.g. ``argument --tries: must be a whole number in 1..20 (got '0')``. Ranges that the
configuration also checks come from the configuration's schema (:func:`config_int`,
:func:`config_float`), and sample rates from :mod:`miragen.limits`, so that one value is
accepted or refused the same way on the command line and in the configuration file.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from .. import config as configmod
from ..limits import SOURCE_RATE_MAX, SOURCE_RATE_MIN, TARGET_RATE_MAX, TARGET_RATE_MIN


def _fmt(v: float) -> str:
    """1000 → '1,000'; 0.1 → '0.1'."""
    if isinstance(v, int) or float(v).is_integer():
        return f"{int(v):,}"
    return f"{v:g}"


def _allowed(lo: float | None, hi: float | None, unit: str) -> str:
    u = f" {unit}" if unit else ""
    if lo is not None and hi is not None:
        return f"in {_fmt(lo)}..{_fmt(hi)}{u}"
    if lo is not None:
        return f"≥ {_fmt(lo)}{u}"
    if hi is not None:
        return f"≤ {_fmt(hi)}{u}"
    return ""


def int_range(
    lo: int | None = None, hi: int | None = None, *, unit: str = ""
) -> Callable[[str], int]:
    """A ``type=`` for whole numbers in ``lo..hi`` (either end may be open)."""
    want = f"must be a whole number {_allowed(lo, hi, unit)}".rstrip()

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{want} (got {text!r})") from None
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"{want} (got {text!r})")
        return value

    parse.__name__ = "whole number"  # argparse's fallback text, should a message ever miss
    return parse


def float_range(
    lo: float | None = None, hi: float | None = None, *, unit: str = "", lo_open: bool = False
) -> Callable[[str], float]:
    """A ``type=`` for finite numbers in ``lo..hi``; ``lo_open``: ``lo`` itself is refused
    (for durations that must be more than 0)."""
    if lo_open and lo is not None:
        want = f"must be a number > {_fmt(lo)}" + (f" {unit}" if unit else "")
        if hi is not None:
            want += f" and ≤ {_fmt(hi)}" + (f" {unit}" if unit else "")
    else:
        want = f"must be a number {_allowed(lo, hi, unit)}".rstrip()

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{want} (got {text!r})") from None
        bad = not math.isfinite(value)
        bad = bad or (lo is not None and (value <= lo if lo_open else value < lo))
        bad = bad or (hi is not None and value > hi)
        if bad:
            raise argparse.ArgumentTypeError(f"{want} (got {text!r})")
        return value

    parse.__name__ = "number"
    return parse


def config_int(section: str, key: str, *, unit: str = "") -> Callable[[str], int]:
    """:func:`int_range` with the range the configuration gives ``section.key``."""
    lo, hi = configmod.key_range(section, key)
    return int_range(None if lo is None else int(lo), None if hi is None else int(hi), unit=unit)


def config_float(section: str, key: str, *, unit: str = "") -> Callable[[str], float]:
    """:func:`float_range` with the range the configuration gives ``section.key``."""
    lo, hi = configmod.key_range(section, key)
    return float_range(lo, hi, unit=unit)


def target_rate() -> Callable[[str], int]:
    """A target sample rate (what the Mirage plays back): limits.TARGET_RATE_MIN..MAX Hz."""
    return int_range(TARGET_RATE_MIN, TARGET_RATE_MAX, unit="Hz")


def source_rate() -> Callable[[str], int]:
    """A source sample rate (--raw-rate: headerless input): limits.SOURCE_RATE_MIN..MAX Hz."""
    return int_range(SOURCE_RATE_MIN, SOURCE_RATE_MAX, unit="Hz")


def seed() -> Callable[[str], int]:
    """A random seed: numpy and torch take 0..2**32-1 everywhere."""
    return int_range(0, 2**32 - 1)
