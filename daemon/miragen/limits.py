"""Numbers that are rules, in one place (imports nothing).

Every command, the configuration and the daemon check rates and sizes against these, so that
one value is accepted or refused the same way everywhere.
"""

from __future__ import annotations

MIRAGE_RATE = 29411  # Hz: the Mirage's default sample rate, 1 MHz / 34 (FORMAT.md §1)
PAGE = 256  # bytes: the Mirage's memory page; wave data is whole pages
HALF_BYTES = 65536  # bytes: one memory half, the longest wavesample

# Target rates (what the Mirage plays back): the Mirage samples at about 10–33 kHz, 50 kHz with
# the optional filter; below 4 kHz nothing useful is left of a sound.
TARGET_RATE_MIN = 4000
TARGET_RATE_MAX = 50000

# Source rates (what a file's header or --raw-rate says). Outside this range a header is damaged
# or hostile: refused with the reason instead of being decoded.
SOURCE_RATE_MIN = 1000
SOURCE_RATE_MAX = 1_000_000


def target_rate_problem(rate: object) -> str | None:
    """Why ``rate`` is not a usable target rate, or None."""
    if isinstance(rate, bool) or not isinstance(rate, int):
        return f"must be a whole number of Hz (got {rate!r})"
    if not TARGET_RATE_MIN <= rate <= TARGET_RATE_MAX:
        return f"{rate} Hz is out of range ({TARGET_RATE_MIN:,}..{TARGET_RATE_MAX:,} Hz)"
    return None


def source_rate_problem(rate: float) -> str | None:
    """Why ``rate`` is not a plausible source rate (from a header or --raw-rate), or None."""
    if not (rate >= SOURCE_RATE_MIN) or rate > SOURCE_RATE_MAX:
        return (
            f"sample rate {rate:g} Hz is out of range ({SOURCE_RATE_MIN:,}..{SOURCE_RATE_MAX:,} Hz)"
        )
    return None
