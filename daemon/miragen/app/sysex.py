"""The body of a SysEx wavesample dump: the CLI and the daemon send the same bytes."""

from __future__ import annotations

from ..audio.loops import fill_with_cycle
from ..limits import PAGE


def sysex_body(data: bytes, *, cycle: bool, cycle_pages: int) -> bytes:
    """``data`` as sent: a single ``cycle`` (whole pages) repeated to ``cycle_pages`` pages, so
    any page-aligned loop on the Mirage is seamless; anything else as it is."""
    if not cycle or not data or len(data) % PAGE:
        return data
    return fill_with_cycle(data, max(len(data), PAGE * int(cycle_pages)))
