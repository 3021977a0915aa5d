"""``miragen sysex encode|decode``: Mirage SysEx (.syx) files (FORMAT.md §4)."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

from ..audio.mirage8 import pad_to_pages
from ..errors import FormatError, InputError, MiragenError
from ..fsutil import atomic_write_bytes, check_output, open_regular
from ..mirage import disk as D
from ..mirage import sysex as sx
from . import _wave
from ._wave import read_disk_image, sound_name

SYX_MAX_BYTES = 16 * 2**20  # a .syx larger than this is refused before it is read
CHUNK = 1 << 20  # bytes read at a time


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

    wav = esub.add_parser(
        "wavesample", help="a wavesample dump (cmd 0x06) from any audio file, at most 255 pages"
    )
    wav.add_argument("input", metavar="IN")
    wav.add_argument("-o", "--output", required=True, metavar="OUT.syx")
    _wave.add_convert_options(wav)
    wav.set_defaults(func=_enc_wavesample)

    prog = esub.add_parser(
        "program", help="a program dump (cmd 0x05 lower, 0x15 upper) of one sound of a disk image"
    )
    prog.add_argument("image", metavar="IMAGE")
    prog.add_argument(
        "sound", metavar="SOUND", help="lower1, upper1, lower2, upper2, lower3 or upper3"
    )
    prog.add_argument("-o", "--output", required=True, metavar="OUT.syx")
    prog.set_defaults(func=_enc_program)

    keys = esub.add_parser("keys", help="front-panel key presses (cmd 0x01), 1 to 5 keys")
    keys.add_argument(
        "keys",
        nargs="+",
        metavar="KEY",
        help="0-9, enter, cancel, param, value, up, down, load-upper, load-lower, sample-upper, "
        "sample-lower, rec-seq, play-seq, load-seq, save-seq, or a code like 0x15",
    )
    keys.add_argument("-o", "--output", required=True, metavar="OUT.syx")
    keys.set_defaults(func=_enc_keys)

    dec = ssub.add_parser(
        "decode",
        help="check and list every Mirage message of a .syx file",
        description="List every Mirage message of IN.syx as it is decoded. What is not the "
        "Mirage's (other manufacturers' SysEx, MIDI real-time bytes, stray bytes) is "
        "skipped and counted; a malformed Mirage message is an error naming its "
        "offset.",
    )
    dec.add_argument("input", metavar="IN.syx")
    dec.add_argument(
        "--json",
        action="store_true",
        help='print a JSON list, one object per message, then {"kind": "summary", '
        '"messages", "skipped_messages", "skipped_bytes", ...}',
    )
    dec.add_argument(
        "--data", action="store_true", help="include the dumped data as hex in the JSON"
    )
    dec.set_defaults(func=_decode)


def _done(path: str, data: bytes, what: str) -> int:
    atomic_write_bytes(path, data)  # the output was checked before anything was read
    print(
        f"wrote {path}: {what}, {len(data):,} bytes, {sx.wire_seconds(len(data)):.2f} s at 31,250 "
        "baud"
    )
    return 0


def _enc_wavesample(args: argparse.Namespace) -> int:
    check_output(args.output, inputs=[args.input], what="output")
    wave = _wave.load_wave(args.input, args, max_bytes=sx.MAX_DUMP_PAGES * sx.PAGE)
    data = pad_to_pages(wave.data).tobytes()
    for w in wave.warnings:
        print(f"miragen: warning: {args.input}: {w}", file=sys.stderr)
    try:
        msg = sx.encode_wavesample_dump(data)
    except FormatError as exc:
        raise InputError(args.input, str(exc)) from None
    pages = len(data) // sx.PAGE
    return _done(
        args.output,
        msg,
        f"wavesample dump of {pages} pages ({len(wave.data):,} bytes + "
        f"{len(data) - len(wave.data)} bytes 0x80 padding)",
    )


def _enc_program(args: argparse.Namespace) -> int:
    sound = sound_name(args.sound)
    check_output(args.output, inputs=[args.image], what="output")
    image = read_disk_image(args.image)
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
    check_output(args.output, what="output")
    try:
        msg = sx.encode_keys([_key(k) for k in args.keys])
    except FormatError as exc:
        raise InputError("keys", str(exc)) from None
    return _done(args.output, msg, f"key presses {' '.join(args.keys)}")


_HEX_TEXT = re.compile(rb"[0-9A-Fa-f\s]*")
_NOT_HEX_TEXT = re.compile(rb"[^0-9A-Fa-f\s]")
_WHITESPACE = b" \t\r\n\v\f"


def _open_regular(path: str | os.PathLike, what: str, max_bytes: int) -> int:
    """A descriptor on ``path`` if it is a regular file of at most ``max_bytes`` bytes."""
    fd, st = open_regular(path, what=what)
    if st.st_size > max_bytes:
        os.close(fd)
        raise InputError(path, f"{what} is {st.st_size:,} bytes; expected at most {max_bytes:,}")
    return fd


def open_syx(
    path: str | os.PathLike, *, max_bytes: int = SYX_MAX_BYTES, chunk_size: int | None = None
) -> Iterator[bytes]:
    """The bytes of a .syx file in pieces of ``chunk_size``: binary, or the hex-text form
    (``F0 0F 01 … F7``, turned into bytes piece by piece).

    The file is opened and checked (a regular file, at most ``max_bytes``) and its first piece
    read before this returns, so those errors come at once; read errors later are
    :class:`InputError` naming the file.
    """
    p = Path(path)
    chunk_size = chunk_size or CHUNK
    fd = _open_regular(p, ".syx file", max_bytes)
    try:
        first = os.read(fd, chunk_size)
    except OSError as exc:
        os.close(fd)
        raise InputError(p, f".syx file cannot be read: {exc.strerror or exc}") from None
    text = bool(first) and first[:1] != b"\xf0" and _HEX_TEXT.fullmatch(first) is not None
    return _syx_pieces(p, fd, first, text, max_bytes, chunk_size)


def _syx_pieces(
    p: Path, fd: int, first: bytes, text: bool, max_bytes: int, chunk_size: int
) -> Iterator[bytes]:
    total = 0
    carry = b""
    piece = first
    try:
        while piece:
            total += len(piece)
            if total > max_bytes:
                raise InputError(p, f".syx file grew past {max_bytes:,} bytes while it was read")
            if text:
                bad = _NOT_HEX_TEXT.search(piece)
                if bad is not None:
                    at = total - len(piece) + bad.start()
                    raise InputError(
                        p,
                        f"hex-text .syx: byte 0x{piece[bad.start()]:02X} at byte "
                        f"{at} is not a hex digit",
                    )
                digits = carry + piece.translate(None, _WHITESPACE)
                cut = len(digits) - len(digits) % 2
                carry = digits[cut:]
                yield bytes.fromhex(digits[:cut].decode("ascii"))
            else:
                yield piece
            try:
                piece = os.read(fd, chunk_size)
            except OSError as exc:
                raise InputError(p, f".syx file cannot be read: {exc.strerror or exc}") from None
        if carry:
            raise InputError(p, "hex-text .syx ends with half a byte (an odd number of hex digits)")
    finally:
        os.close(fd)


def read_syx(path: str) -> bytes:
    """Bytes of a .syx file: binary, or the hex-text form (``F0 0F 01 … F7``)."""
    return b"".join(open_syx(path))


def decode_syx(path: str | os.PathLike, stats=None) -> Iterator:
    """The Mirage messages of a .syx file, decoded one by one as the file is read (memory:
    one piece of the file and one message). What is not the Mirage's is skipped and counted
    in ``stats`` (a :class:`~miragen.mirage.sysex.ScanStats`). A malformed Mirage message
    raises :class:`InputError` naming the file, the message and its byte offset; so does a
    file with no Mirage message at all, after the iteration."""
    stats = stats if stats is not None else sx.ScanStats()
    pieces = open_syx(path)  # opened and checked now, not at the first next()
    return _decode_pieces(path, pieces, stats)


def _decode_pieces(path, pieces, stats) -> Iterator:
    try:
        yield from sx.iter_decode(pieces, stats)
    except sx.SysexError as exc:
        raise InputError(path, str(exc)) from None
    if stats.messages == 0:
        raise InputError(path, no_messages_reason(stats))


def no_messages_reason(stats) -> str:
    """Why a stream without any Mirage message is refused, in words."""
    if stats.bytes == 0:
        return "no SysEx messages (empty input)"
    what = stats.summary() or "nothing"
    return f"no Mirage message (F0 0F 01 … F7) in {stats.bytes:,} bytes; {what}"


def _summary(m) -> str:
    f = dict(m.fields)
    if m.kind == "program_dump":
        used = sum(1 for w in f["wavesamples"] if w["used"])
        return (
            f"{f['half']}, revision 0x{f['revision']:02X}, {used} of 8 wavesamples used, 4 programs"
        )
    if m.kind == "config_dump":
        c = f["config"]
        return (
            f"MIDI channel {c['midi_channel_82']}, thru {c['thru_mode_83']}, "
            f"external computer {c['external_computer_91']}, software rev {c['software_rev_97']}"
        )
    parts = [f"{k}={v}" for k, v in f.items()]
    if m.data is not None:
        parts.append(f"{len(m.data):,} data bytes")
    return ", ".join(parts)


def _decode(args: argparse.Namespace) -> int:
    stats = sx.ScanStats()
    messages = decode_syx(args.input, stats)
    if args.json:
        return _decode_json(args, messages, stats)
    out = sys.stdout
    for i, m in enumerate(messages, 1):
        out.write(f"{i:3d}  0x{m.cmd:02X} {m.kind:22s} {_summary(m)}\n")
    note = stats.summary()
    if note:
        print(f"miragen: note: {args.input}: {note}", file=sys.stderr)
    return 0


def _decode_json(args: argparse.Namespace, messages: Iterator, stats) -> int:
    """A JSON list written as the messages are decoded: one object per message, then
    ``{"kind": "summary", ...}`` with the counts. An error before the first message is left to
    the caller (one error object); after it, the list is closed with ``{"kind": "error", ...}``
    so that stdout stays one valid JSON document, and the exit status is 2."""
    out = sys.stdout
    sep = "[\n  "
    try:
        for m in messages:
            out.write(sep + json.dumps(m.to_dict(with_data=args.data)))
            sep = ",\n  "
    except MiragenError as exc:
        if sep.startswith("["):
            raise
        error = {"kind": "error", "ok": False, "error": str(exc)}
        if isinstance(exc, InputError):
            error.update(file=exc.path, reason=exc.reason)
        out.write(sep + json.dumps(error) + "\n]\n")
        out.flush()
        print(f"miragen: error: {exc}", file=sys.stderr)
        return 2
    out.write(sep + json.dumps({"kind": "summary", "ok": True, **stats.to_dict()}) + "\n]\n")
    return 0
