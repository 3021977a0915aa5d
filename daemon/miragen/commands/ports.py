"""``miragen ports``: which MIDI and serial ports this machine has, and what works here."""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from typing import Any

from ..transport.midi import RAW_GLOB, SEQ_DEVICE


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ports", help="list MIDI ports, raw MIDI devices and serial devices, with hints"
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_run)


def survey() -> dict[str, Any]:
    """Everything `miragen ports` reports, as a dict."""
    out: dict[str, Any] = {
        "alsa_sequencer": os.path.exists(SEQ_DEVICE),
        "midi_inputs": [],
        "midi_outputs": [],
        "midi_error": None,
        "raw_midi": [],
        "serial": [],
        "hints": [],
    }
    if out["alsa_sequencer"] or not sys.platform.startswith("linux"):
        _list_midi_ports(out)
    out["raw_midi"] = _raw_midi_devices()
    _list_serial_ports(out)
    out["hints"].extend(_hints(out))
    return out


def _list_midi_ports(out: dict[str, Any]) -> None:
    """The mido/rtmidi ports into ``out``, or why they could not be listed."""
    try:
        import mido

        be = mido.Backend("mido.backends.rtmidi", load=True)
        out["midi_outputs"] = list(be.get_output_names())
        out["midi_inputs"] = list(be.get_input_names())
    except Exception as exc:  # rtmidi raises its own error types when the backend fails
        out["midi_error"] = f"{type(exc).__name__}: {exc}"


def _raw_midi_devices() -> list[dict[str, Any]]:
    """The raw ALSA MIDI devices (/dev/snd/midiC*D*), with what this user may do with them."""
    return [
        {
            "device": path,
            "spec": f"raw:{path}",
            "readable": os.access(path, os.R_OK),
            "writable": os.access(path, os.W_OK),
        }
        for path in sorted(glob.glob(RAW_GLOB))
    ]


def _list_serial_ports(out: dict[str, Any]) -> None:
    """The serial devices pyserial lists, then the Jetson UARTs it missed, into ``out``."""
    seen: set[str] = set()
    try:
        from serial.tools import list_ports

        for info in list_ports.comports():
            seen.add(info.device)
            out["serial"].append(
                {
                    "device": info.device,
                    "spec": f"serial:{info.device}",
                    "description": info.description,
                    "hwid": info.hwid,
                }
            )
    except Exception as exc:  # listing must never crash the report
        out["hints"].append(f"serial ports could not be listed: {exc}")
    # Jetson UARTs (pyserial lists them only sometimes)
    for path in sorted(glob.glob("/dev/ttyTHS*")):
        if path not in seen:
            out["serial"].append(
                {"device": path, "spec": f"serial:{path}", "description": "Jetson UART", "hwid": ""}
            )
    for s in out["serial"]:
        s["writable"] = os.access(s["device"], os.W_OK)


def _hints(out: dict[str, Any]) -> list[str]:
    """What to do about what the survey ``out`` found (or did not)."""
    hints = []
    if not out["alsa_sequencer"] and sys.platform.startswith("linux"):
        hints.append(
            f"{SEQ_DEVICE} is missing: no ALSA sequencer, so no mido/rtmidi ports "
            "(`sudo modprobe snd-seq`; some Jetson kernels lack it: use a raw:/dev/snd/midiC*D* "
            "device or a serial: UART)"
        )
    elif out["midi_error"]:
        hints.append(
            f"the rtmidi backend failed ({out['midi_error']}); check python-rtmidi and ALSA"
        )
    if not out["raw_midi"] and os.path.isdir("/dev/snd"):
        hints.append(
            "no raw MIDI devices (/dev/snd/midiC*D*): plug in a USB-MIDI interface (snd-usb-audio)"
        )
    elif not os.path.isdir("/dev/snd"):
        hints.append(
            "/dev/snd is missing: no ALSA sound devices on this machine "
            "(or not visible in this container)"
        )
    if any(not r["writable"] for r in out["raw_midi"]) or any(
        not s["writable"] for s in out["serial"]
    ):
        hints.append(
            "some devices are not writable by this user: add it to the 'audio' (MIDI) and "
            "'dialout' (serial) groups"
        )
    if not out["serial"]:
        hints.append(
            "no serial devices; a Jetson UART appears as /dev/ttyTHS1 once enabled "
            "(see docs/delivery-sysex.md)"
        )
    hints.append(
        "any spec here works with `miragen deliver IN --port/--raw/--serial` or deliver.transport; "
        "`miragen deliver IN --sim` needs no hardware"
    )
    return hints


def _run(args: argparse.Namespace) -> int:
    s = survey()
    if args.json:
        print(json.dumps(s, indent=2))
        return 0
    print(f"ALSA sequencer ({'present' if s['alsa_sequencer'] else 'missing'})")
    if s["midi_outputs"] or s["midi_inputs"]:
        for name in s["midi_outputs"]:
            print(f"  out  midi:{name}")
        for name in s["midi_inputs"]:
            print(f"  in   midi:{name}")
    else:
        print("  (no mido/rtmidi ports)")
    print("raw MIDI devices")
    for r in s["raw_midi"]:
        print(f"  {r['spec']}{'' if r['writable'] else '  (not writable)'}")
    if not s["raw_midi"]:
        print("  (none)")
    print("serial devices")
    for d in s["serial"]:
        print(f"  {d['spec']}  {d['description']}{'' if d['writable'] else '  (not writable)'}")
    if not s["serial"]:
        print("  (none)")
    for h in s["hints"]:
        print(f"hint: {h}")
    return 0
