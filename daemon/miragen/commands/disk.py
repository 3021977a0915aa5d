"""``miragen disk info|extract|write|template``: Mirage disk images (450,560-byte .img/.edm)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ..errors import FormatError, InputError
from ..fsutil import atomic_write_bytes, atomic_write_text
from . import _wave

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "disk",
        help="read, extract and write Mirage disk images (.img/.edm)",
        description="Mirage disk images: raw 450,560-byte .img/.edm files (FORMAT.md §2-3).",
    )
    dsub = p.add_subparsers(dest="disk_command", metavar="ACTION")
    dsub.required = True

    info = dsub.add_parser("info", help="list the sounds, wavesamples and programs of an image")
    info.add_argument("image", metavar="IMAGE")
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    info.set_defaults(func=_info)

    ex = dsub.add_parser("extract", help="write each sound's 64 KB wave area and each used wavesample as .pcm/.wav/.json")
    ex.add_argument("image", metavar="IMAGE")
    ex.add_argument("dir", metavar="DIR")
    ex.add_argument("--rate", type=int, default=29411, help="sample rate written into the .wav files (no rate is stored on disk; default 29411)")
    ex.set_defaults(func=_extract)

    wr = dsub.add_parser(
        "write",
        help="write wavesamples into a copy of a template image",
        description=(
            "Write audio into a copy of TEMPLATE. SPEC is SOUND:N=FILE (wavesample N of SOUND, into the "
            "page range the template gives it) or SOUND=FILE (the whole 64 KB wave area). FILE is any "
            "audio Miragen reads (converted on the way). Only the wave areas and program blocks change."
        ),
    )
    wr.add_argument("specs", nargs="*", metavar="SPEC", help="lower1:3=FILE or lower1=FILE")
    wr.add_argument("--template", required=True, metavar="T.img", help="image made on a real Mirage (or `disk template --synthetic`)")
    wr.add_argument("-o", "--output", required=True, metavar="OUT.img")
    wr.add_argument("--program", action="append", default=[], metavar="SOUND:P:NAME=VALUE", help="set program field NAME (as stored, 0..255) of program P (1..4); repeatable")
    wr.add_argument("--hfe", action="store_true", help="also make OUT.hfe with HxC's hxcfe (when installed)")
    wr.add_argument("--tile-cycle", action="store_true",
                    help="each FILE is one single cycle (whole 256-byte pages): repeat it to fill the wavesample's page range "
                         "(or the whole wave area) instead of padding with 0x80")
    wr.add_argument("--json", action="store_true", help="print the report as JSON")
    _wave.add_convert_options(wr)
    wr.set_defaults(func=_write)

    tp = dsub.add_parser("template", help="make a synthetic, layout-valid image (it does NOT boot a Mirage)")
    tp.add_argument("output", metavar="OUT.img")
    tp.add_argument("--synthetic", action="store_true", help="required: the image has no operating system and does not boot a Mirage")
    tp.set_defaults(func=_template)


# --------------------------------------------------------------------------- helpers


def _read_image(path: str) -> bytes:
    from ..mirage import disk as D

    data = _wave.read_file(path, max_bytes=4 * D.SIZE, what="disk image")
    try:
        D.check_image(data)
    except FormatError as exc:
        raise InputError(path, str(exc)) from None
    return data


def _sound(name: str) -> str:
    from ..mirage import disk as D

    if name not in D.SOUNDS:
        raise InputError(name, f"unknown sound; expected one of {', '.join(D.SOUNDS)}")
    return name


# --------------------------------------------------------------------------- info


def _info(args: argparse.Namespace) -> int:
    from ..mirage import disk as D

    image = _read_image(args.image)
    info = D.parse(image).info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    sys.stdout.write(render_info(info, args.image))
    return 0


WS_COLUMNS = (
    ("ws", "number"), ("used", "used"), ("start", "start_page"), ("end", "end_page"),
    ("lp.st", "loop_start_page"), ("lp.end", "loop_end_page"), ("fine", "loop_end_fine"),
    ("loop", "loop_on"), ("coarse", "coarse_tune"), ("fine.t", "fine_tune"), ("top", "top_key"),
    ("amp", "relative_amplitude"), ("filt", "relative_filter"), ("maxf", "max_filter"), ("free", "free_run"),
)


def render_info(info: dict, name: str = "") -> str:
    """The readable table form of :meth:`DiskImage.info`."""
    lines = [f"{name}: {info['size']:,} bytes, Mirage disk image"]
    if info.get("synthetic"):
        lines.append("SYNTHETIC TEMPLATE made by miragen: no operating system, it does NOT boot a Mirage")
    for sname, s in info["sounds"].items():
        used = sum(1 for w in s["wavesamples"] if w["used"])
        lines += ["", f"== {sname}: {used} of 8 wavesamples used", f"   parameters sha256 {s['param_sha256']}", f"   wave data  sha256 {s['wave_sha256']}"]
        widths = [max(len(h), 5) for h, _ in WS_COLUMNS]
        lines.append("   " + " ".join(h.rjust(w) for (h, _), w in zip(WS_COLUMNS, widths)))
        for ws in s["wavesamples"]:
            cells = []
            for (_h, key), w in zip(WS_COLUMNS, widths):
                v = ws[key]
                cells.append(("yes" if v else "no").rjust(w) if isinstance(v, bool) else str(v).rjust(w))
            lines.append("   " + " ".join(cells))
        progs = s["programs"]
        fields = [k for k in progs[0] if k not in ("number", "panel")]
        lines.append("   program field (stored [panel])".ljust(36) + "".join(f"P{p['number']}".rjust(11) for p in progs))
        for f in fields:
            row = "   " + f.ljust(33)
            for p in progs:
                cell = str(p[f]) + (f" [{p['panel'][f]}]" if f in p["panel"] else "")
                row += cell.rjust(11)
            lines.append(row)
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- extract


def _extract(args: argparse.Namespace) -> int:
    from ..audio.io import wav_u8_bytes
    from ..mirage import disk as D

    image = _read_image(args.image)
    disk = D.parse(image)
    out = Path(args.dir)
    written = 0
    for sname, snd in disk.sounds.items():
        atomic_write_bytes(out / f"{sname}.pcm", snd.wave)
        written += 1
        for ws in snd.params.wavesamples:
            if not ws.used:
                continue
            stem = f"{sname}-ws{ws.number}"
            data = D.wavesample_bytes(snd.wave, ws)
            atomic_write_bytes(out / f"{stem}.pcm", data)
            atomic_write_bytes(out / f"{stem}.wav", wav_u8_bytes(data, args.rate))
            side = {"sound": sname, **ws.to_dict(), "length": len(data), "rate": args.rate, "image": str(args.image)}
            atomic_write_text(out / f"{stem}.json", json.dumps(side, indent=2) + "\n")
            written += 3
    print(f"{out}: {written} files from {args.image}" + (" (synthetic template)" if disk.synthetic else ""))
    return 0


# --------------------------------------------------------------------------- write


def _parse_spec(spec: str) -> tuple[str, int | None, str]:
    if "=" not in spec:
        raise InputError(spec, "expected SOUND:N=FILE or SOUND=FILE (e.g. lower1:3=kick.wav)")
    target, file = spec.split("=", 1)
    if not file:
        raise InputError(spec, "no FILE after '='")
    if ":" in target:
        sname, num = target.split(":", 1)
        try:
            n = int(num)
        except ValueError:
            raise InputError(spec, f"wavesample number {num!r} is not a number (1..8)") from None
        if not 1 <= n <= 8:
            raise InputError(spec, f"wavesample number {n}: expected 1..8")
        return _sound(sname), n, file
    return _sound(target), None, file


def _parse_program(spec: str) -> tuple[str, int, str, int]:
    from ..mirage import params as P

    try:
        target, value = spec.split("=", 1)
        sname, prog, name = target.split(":", 2)
        p = int(prog)
        v = int(value, 0)
    except ValueError:
        raise InputError(spec, "expected SOUND:P:NAME=VALUE, e.g. lower1:1:filter_cutoff=80") from None
    if not 1 <= p <= 4:
        raise InputError(spec, f"program {p}: expected 1..4")
    if name not in P.PROGRAM_FIELDS:
        raise InputError(spec, f"unknown program field {name!r}; known: {', '.join(P.PROGRAM_FIELDS)}")
    if not 0 <= v <= 255:
        raise InputError(spec, f"value {v}: expected 0..255 (as stored)")
    return _sound(sname), p, name, v


def _write(args: argparse.Namespace) -> int:
    from ..mirage import disk as D
    from ..mirage import params as P

    if not args.specs and not args.program:
        raise InputError("disk write", "nothing to write: give at least one SPEC or --program")
    specs = [_parse_spec(s) for s in args.specs]
    programs = [_parse_program(s) for s in args.program]
    image = _read_image(args.template)
    reports = []
    for sname, number, file in specs:
        if number is None:
            capacity = D.HALF
        else:
            ws = P.parse_sound_params(D.read_param_block(image, sname)).wavesample(number)
            if not ws.used:
                raise InputError(args.template, f"{sname} wavesample {number} is unused in this template (end page {ws.end_page} < start page {ws.start_page})")
            capacity = ws.length
        wave = _wave.load_wave(file, args, max_bytes=capacity)
        try:
            data = wave.data
            if args.tile_cycle:
                from ..audio.loops import fill_with_cycle

                data = fill_with_cycle(data, capacity)
            if number is None:
                image, rep = D.write_wave_area(image, sname, data)
            else:
                image, rep = D.write_wavesample(image, sname, number, data)
        except FormatError as exc:
            raise InputError(file, str(exc)) from None
        rep["file"] = file
        rep["converted"] = wave.converted
        rep["warnings"] = wave.warnings + rep["warnings"]
        reports.append(rep)
    for sname, p, name, v in programs:
        image = D.set_program_field(image, sname, p, name, v)
    atomic_write_bytes(args.output, image)
    result = {"output": args.output, "template": args.template, "writes": reports, "programs": [
        {"sound": s, "program": p, "field": n, "value": v} for s, p, n, v in programs]}
    if D.is_synthetic(image):
        result["note"] = "the template is synthetic: this image does not boot a Mirage"
    rc = 0
    if args.hfe:
        hfe = str(Path(args.output).with_suffix(".hfe"))
        ok, msg = make_hfe(args.output, hfe)
        result["hfe"] = hfe if ok else None
        result["hfe_message"] = msg
        if not ok:
            rc = 2
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for rep in reports:
            where = f"{rep['sound']}" + (f" wavesample {rep['number']} (pages {rep['start_page']}..{rep['end_page']})" if "number" in rep else " wave area")
            print(f"{rep['file']} → {where}: {rep['written']:,} of {rep['capacity']:,} bytes, {rep['unused']:,} unused (0x80)" + ("" if rep["converted"] else ", taken byte for byte"))
            for w in rep["warnings"]:
                print(f"  warning: {w}")
        for s, p, n, v in programs:
            print(f"{s} program {p}: {n} = {v}")
        print(f"wrote {args.output}" + (f" ({result['note']})" if "note" in result else ""))
        if args.hfe:
            print(result["hfe_message"], file=sys.stdout if rc == 0 else sys.stderr)
    return rc


def make_hfe(img_path: str, hfe_path: str) -> tuple[bool, str]:
    """Run HxC's ``hxcfe`` on a copy named ``.edm`` (its Mirage loader goes by that
    extension) and move the result to ``hfe_path`` atomically. Returns (ok, message)."""
    exe = shutil.which("hxcfe")
    if exe is None:
        return False, (
            f"hxcfe (HxC Floppy Emulator command line) is not installed, so no .hfe was made; "
            f"{img_path} is written and FlashFloppy reads it directly (see docs/delivery-disk.md)"
        )
    out_dir = Path(hfe_path).parent
    with tempfile.TemporaryDirectory(prefix=".miragen-hfe-", dir=out_dir) as tmp:
        edm = Path(tmp) / (Path(img_path).stem + ".edm")
        shutil.copyfile(img_path, edm)
        tmp_hfe = Path(tmp) / "out.hfe"
        cmd = [exe, f"-finput:{edm}", "-conv:HXC_HFE", f"-foutput:{tmp_hfe}"]
        try:
            proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, f"hxcfe failed to run: {exc}"
        if proc.returncode != 0 or not tmp_hfe.is_file():
            tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-3:]
            return False, f"hxcfe exited with {proc.returncode} and made no .hfe: {' / '.join(tail)}"
        os.replace(tmp_hfe, hfe_path)
    return True, f"wrote {hfe_path} with {exe}"


# --------------------------------------------------------------------------- template


def _template(args: argparse.Namespace) -> int:
    from ..mirage import disk as D

    if not args.synthetic:
        raise InputError(
            args.output,
            "only --synthetic templates can be made here; a bootable template must be saved on a real Mirage "
            "(its operating system is Ensoniq's code and is never shipped)",
        )
    atomic_write_bytes(args.output, D.synthetic_template())
    print(
        f"wrote {args.output}: synthetic template, 6 sounds × 8 wavesamples of 32 pages. "
        "It has NO operating system and does NOT boot a Mirage; use it for tests and demos."
    )
    return 0

