"""``miragen sysex encode|decode``: Mirage SysEx (.syx) files (FORMAT.md §4)."""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import FormatError, InputError
from ..fsutil import atomic_write_bytes
from . import _wave


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sysex",
        help="encode and decode Mirage SysEx (.syx) files",
        description="Mirage System Exclusive messages (F0 0F 01 … F7), FORMAT.md §4.",
    )
    ssub = p.add_subparsers(dest="sysex_command", metavar="ACTION")
    ssub.required = True

    enc = ssub.add_parser("encode", help="write a .syx file")
    esub = enc.add_subparsers(dest="what", metavar="WHAT")
    esub.required = True

    wav = esub.add_parser("wavesample", help="a wavesample dump (cmd 0x06) from any audio file, at most 255 pages")
    wav.add_argument("input", metavar="IN")
    wav.add_argument("-o", "--output", required=True, metavar="OUT.syx")
    _wave.add_convert_options(wav)
    wav.set_defaults(func=_enc_wavesample)

    prog = esub.add_parser("program", help="a program dump (cmd 0x05 lower, 0x15 upper) of one sound of a disk image")
    prog.add_argument("image", metavar="IMAGE")
    prog.add_argument("sound", metavar="SOUND", help="lower1, upper1, lower2, upper2, lower3 or upper3")
    prog.add_argument("-o", "--output", required=True, metavar="OUT.syx")
    prog.set_defaults(func=_enc_program)

    keys = esub.add_parser("keys", help="front-panel key presses (cmd 0x01), 1 to 5 keys")
    keys.add_argument("keys", nargs="+", metavar="KEY", help="0-9, enter, cancel, param, value, up, down, load-upper, load-lower, sample-upper, sample-lower, rec-seq, play-seq, load-seq, save-seq, or a code like 0x15")
    keys.add_argument("-o", "--output", required=True, metavar="OUT.syx")
    keys.set_defaults(func=_enc_keys)

    dec = ssub.add_parser("decode", help="check and list every message of a .syx file")
    dec.add_argument("input", metavar="IN.syx")
    dec.add_argument("--json", action="store_true", help="print a JSON list, one object per message")
    dec.add_argument("--data", action="store_true", help="include the dumped data as hex in the JSON")
    dec.set_defaults(func=_decode)


def _done(path: str, data: bytes, what: str) -> int:
    from ..mirage import sysex as sx

    atomic_write_bytes(path, data)
    print(f"wrote {path}: {what}, {len(data):,} bytes, {sx.wire_seconds(len(data)):.2f} s at 31,250 baud")
    return 0


def _enc_wavesample(args: argparse.Namespace) -> int:
    from ..audio.mirage8 import pad_to_pages
    from ..mirage import sysex as sx

    wave = _wave.load_wave(args.input, args, max_bytes=sx.MAX_DUMP_PAGES * sx.PAGE)
    data = pad_to_pages(wave.data).tobytes()
    for w in wave.warnings:
        print(f"warning: {w}", file=sys.stderr)
    try:
        msg = sx.encode_wavesample_dump(data)
    except FormatError as exc:
        raise InputError(args.input, str(exc)) from None
    pages = len(data) // sx.PAGE
    return _done(args.output, msg, f"wavesample dump of {pages} pages ({len(wave.data):,} bytes + {len(data) - len(wave.data)} bytes 0x80 padding)")


def _enc_program(args: argparse.Namespace) -> int:
    from ..mirage import disk as D
    from ..mirage import sysex as sx
    from .disk import _read_image, _sound

    sound = _sound(args.sound)
    image = _read_image(args.image)
    upper = sound.startswith("upper")
    msg = sx.encode_program_dump(D.read_param_block(image, sound), upper)
    return _done(args.output, msg, f"program dump of {sound} (cmd 0x{msg[3]:02X})")


def _key(token: str) -> int | str:
    t = token.strip().lower()
    if t.startswith("0x"):
        try:
            return int(t, 16)
        except ValueError:
            raise InputError(token, "not a hex key code") from None
    return t


def _enc_keys(args: argparse.Namespace) -> int:
    from ..mirage import sysex as sx

    try:
        msg = sx.encode_keys([_key(k) for k in args.keys])
    except FormatError as exc:
        raise InputError("keys", str(exc)) from None
    return _done(args.output, msg, f"key presses {' '.join(args.keys)}")


def read_syx(path: str) -> bytes:
    """Bytes of a .syx file: binary, or the hex-text form (``F0 0F 01 … F7``)."""
    data = _wave.read_file(path, max_bytes=16 * 2**20, what=".syx file")
    if data and data[:1] != b"\xF0":
        try:
            text = data.decode("ascii")
            return bytes.fromhex(" ".join(text.split()))
        except (UnicodeDecodeError, ValueError):
            pass
    return data


def _summary(m) -> str:
    f = dict(m.fields)
    if m.kind == "program_dump":
        used = sum(1 for w in f["wavesamples"] if w["used"])
        return f"{f['half']}, revision 0x{f['revision']:02X}, {used} of 8 wavesamples used, 4 programs"
    if m.kind == "config_dump":
        c = f["config"]
        return f"MIDI channel {c['midi_channel_82']}, thru {c['thru_mode_83']}, external computer {c['external_computer_91']}, software rev {c['software_rev_97']}"
    parts = [f"{k}={v}" for k, v in f.items()]
    if m.data is not None:
        parts.append(f"{len(m.data):,} data bytes")
    return ", ".join(parts)


def _decode(args: argparse.Namespace) -> int:
    from ..mirage import sysex as sx

    stream = read_syx(args.input)
    try:
        messages = sx.decode_stream(stream)
    except sx.SysexError as exc:
        raise InputError(args.input, str(exc)) from None
    if args.json:
        print(json.dumps([m.to_dict(with_data=args.data) for m in messages], indent=2))
        return 0
    for i, m in enumerate(messages, 1):
        print(f"{i:3d}  0x{m.cmd:02X} {m.kind:22s} {_summary(m)}")
    return 0
