"""How bytes reach a Mirage: one interface (:class:`~.base.Transport`), several ways.

``open_transport(spec, cfg)`` with ``spec``:

- ``sim``: a simulated Mirage in this process (:mod:`.simulated`);
- ``midi:<part of a port name>``: a mido port (python-rtmidi, needs the ALSA sequencer);
- ``serial:<device or pyserial URL>``: a UART or USB-serial adapter at ``deliver.baud``;
- ``raw:/dev/snd/midiCxDy``: a raw ALSA MIDI device, paced by us.
"""

from __future__ import annotations

from typing import Any

from .base import LinkLost, Transport, TransportError
from .midi import MidoTransport, RawMidiTransport
from .serial import SerialTransport
from .simulated import SimTransport

__all__ = ["LinkLost", "Transport", "TransportError", "open_transport"]


def open_transport(spec: str, cfg: dict[str, Any] | None = None, **overrides: Any) -> Transport:
    """Open the transport named by ``spec``; pacing and speed come from ``cfg['deliver']``.

    ``overrides`` (chunk_size, chunk_gap_s, baud, faults, …) win over the configuration.
    """
    d = dict((cfg or {}).get("deliver", {}))
    chunk_size = int(overrides.pop("chunk_size", d.get("chunk_size", 256)))
    chunk_gap_s = float(overrides.pop("chunk_gap_s", d.get("chunk_gap_ms", 0.0) / 1000.0))
    common: dict[str, Any] = {"chunk_size": chunk_size, "chunk_gap_s": chunk_gap_s}
    spec = (spec or "").strip()
    if spec == "sim":
        return SimTransport(**common, **overrides)
    forms = "'sim', 'midi:<port name part>', 'serial:<device or URL>' or 'raw:/dev/snd/midiCxDy'"
    if not spec:
        raise TransportError(f"no transport given (empty); expected {forms}")
    kind, sep, rest = spec.partition(":")
    rest = rest.strip()
    if sep and not rest and kind in ("serial", "raw", "midi"):
        what = {
            "serial": "serial device or URL",
            "raw": "raw MIDI device",
            "midi": "MIDI port name",
        }[kind]
        raise TransportError(f"transport {spec!r}: the {what} is empty; expected {forms}")
    if not sep or not rest:
        raise TransportError(f"transport {spec!r}: expected {forms}")
    if kind == "serial":
        baud = int(overrides.pop("baud", d.get("baud", 31250)))
        return SerialTransport(rest, baud=baud, **common, **overrides)
    if kind == "raw":
        return RawMidiTransport(rest, **common, **overrides)
    if kind == "midi":
        return MidoTransport(rest, **common, **overrides)
    raise TransportError(
        f"transport {spec!r}: unknown kind {kind!r}; expected sim, midi:, serial: or raw:"
    )
