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

from ..app.keyboard import keyboard_info, keyboard_lines
from ..audio.io import wav_u8_bytes
from ..audio.loops import fill_with_cycle, wavesample_figures
from ..errors import FormatError, InputError
from ..fsutil import atomic_write_bytes, check_output, prepare_output_dir
from ..mirage import disk as D
from ..mirage import params as P
from . import _args, _wave

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "disk",
        help="read, extract and write Mirage disk images (.img/.edm)",
        description="Mirage disk images: raw 450,560-byte .img/.edm files (FORMAT.md §2-3).",
    )
    dsub = p.add_subparsers(dest="disk_command", metavar="ACTION")
    dsub.required = True
    _add_info(dsub)
    _add_extract(dsub)
    _add_write(dsub)
    _add_template(dsub)


def _add_info(dsub: argparse._SubParsersAction) -> None:
    info = dsub.add_parser("info", help="list the sounds, wavesamples and programs of an image")
    info.add_argument("image", metavar="IMAGE")
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    info.add_argument("--force", action="store_true", help=FORCE_HELP)
    info.set_defaults(func=_info)


def _add_extract(dsub: argparse._SubParsersAction) -> None:
    ex = dsub.add_parser(
        "extract",
        help="write each sound's 64 KB wave area and each used wavesample as .pcm/.wav/.json",
        description=(
            "Write each sound's wave area (SOUND.pcm) and each used wavesample (SOUND-wsN.pcm, "
            ".wav) with a .json sidecar into DIR (created when missing). A .pcm written here and "
            "put back with `disk write` is taken byte for byte, 0x00 bytes included: extract "
            "then write back gives the same image."
        ),
    )
    ex.add_argument("image", metavar="IMAGE")
    ex.add_argument("dir", metavar="DIR")
    ex.add_argument(
        "--rate",
        type=_args.target_rate(),
        default=29411,
        help="sample rate written into the .wav files (no rate is stored on disk; default 29411)",
    )
    ex.add_argument("--force", action="store_true", help=FORCE_HELP)
    ex.set_defaults(func=_extract)


def _add_write(dsub: argparse._SubParsersAction) -> None:
    wr = dsub.add_parser(
        "write",
        help="write wavesamples into a copy of a template image",
        description=(
            "Write audio into a copy of TEMPLATE. SPEC is SOUND:N=FILE (wavesample N of SOUND, "
            "into the page range the template gives it) or SOUND=FILE (the whole 64 KB wave area). "
            "FILE is any audio Miragen reads (converted on the way). Only the wave areas and "
            "program blocks change."
        ),
    )
    wr.add_argument("specs", nargs="*", metavar="SPEC", help="lower1:3=FILE or lower1=FILE")
    wr.add_argument(
        "--template",
        required=True,
        metavar="T.img",
        help="image made on a real Mirage (or `disk template --synthetic`)",
    )
    wr.add_argument("-o", "--output", required=True, metavar="OUT.img")
    wr.add_argument(
        "--program",
        action="append",
        default=[],
        metavar="SOUND:P:NAME=VALUE",
        help="set program field NAME (as stored, 0..255) of program P (1..4); repeatable",
    )
    wr.add_argument(
        "--hfe", action="store_true", help="also make OUT.hfe with HxC's hxcfe (when installed)"
    )
    wr.add_argument(
        "--tile-cycle",
        action="store_true",
        help="each FILE is one single cycle: repeat it to fill the wavesample's page "
        "range (or the whole wave area) instead of padding with 0x80. A .pcm taken "
        "byte for byte that is whole pages tiles as it is; any other cycle is "
        "resampled periodically to 256·k points (k = its length at --rate / 256, "
        "rounded, at least 1) first",
    )
    wr.add_argument(
        "--force",
        action="store_true",
        help="write into a template that fails the plausibility check (see `disk info --force`)",
    )
    wr.add_argument("--json", action="store_true", help="print the report as JSON")
    _wave.add_convert_options(wr)
    _wave.add_keep_bytes_option(wr)
    wr.set_defaults(func=_write)


def _add_template(dsub: argparse._SubParsersAction) -> None:
    tp = dsub.add_parser(
        "template", help="make a synthetic, layout-valid image (it does NOT boot a Mirage)"
    )
    tp.add_argument("output", metavar="OUT.img")
    tp.add_argument(
        "--synthetic",
        action="store_true",
        help="required: the image has no operating system and does not boot a Mirage",
    )
    tp.set_defaults(func=_template)


FORCE_HELP = (
    "read an image that fails the plausibility check (any 450,560 bytes have the right size; "
    "checked: an operating system in tracks 0-1, loop points inside each used wavesample)"
)

SYNTHETIC_HINT = (
    f"{_wave.TOO_LONG_HINT}, or --template with an image whose wavesample is large enough "
    "(the synthetic template's are 32 pages)"
)

# --------------------------------------------------------------------------- helpers


def _write_out(path: str | Path, data: bytes) -> Path:
    """Write atomically; a path the system refuses becomes one :class:`InputError` line."""
    try:
        return atomic_write_bytes(path, data)
    except OSError as exc:
        raise InputError(path, f"cannot write it: {exc.strerror or exc}") from None


# --------------------------------------------------------------------------- info


def _info(args: argparse.Namespace) -> int:
    image = _wave.read_disk_image(args.image, force=args.force)
    parsed = D.parse(image, force=True)
    info = parsed.info()
    for name, snd in parsed.sounds.items():  # what each key plays (docs/keyboard.md)
        info["sounds"][name]["keyboard"] = keyboard_info(snd.params.raw, snd.wave)
        for ws in info["sounds"][name]["wavesamples"]:  # the loop's click (docs/audio.md)
            ws.update(wavesample_figures(snd.wave, ws))
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    sys.stdout.write(render_info(info, args.image))
    return 0


WS_COLUMNS = (
    ("ws", "number"),
    ("used", "used"),
    ("start", "start_page"),
    ("end", "end_page"),
    ("lp.st", "loop_start_page"),
    ("lp.end", "loop_end_page"),
    ("fine", "loop_end_fine"),
    ("loop", "loop_on"),
    ("coarse", "coarse_tune"),
    ("fine.t", "fine_tune"),
    ("top", "top_key"),
    ("amp", "relative_amplitude"),
    ("filt", "relative_filter"),
    ("maxf", "max_filter"),
    ("free", "free_run"),
    ("click", "loop_click_db"),  # dB against the loop's level, −80: none (docs/audio.md)
)


def render_info(info: dict, name: str = "") -> str:
    """The readable table form of :meth:`DiskImage.info`."""
    if info.get("problems"):
        head = f"{name}: {info['size']:,} bytes, NOT a plausible Mirage disk image"
        lines = [f"{head} (read with --force):"]
        lines += [f"   {p}" for p in info["problems"]]
    else:
        lines = [f"{name}: {info['size']:,} bytes, Mirage disk image"]
    if info.get("synthetic"):
        lines.append(
            "SYNTHETIC TEMPLATE made by miragen: no operating system, it does NOT boot a Mirage"
        )
    for sname, s in info["sounds"].items():
        used = sum(1 for w in s["wavesamples"] if w["used"])
        lines += [
            "",
            f"== {sname}: {used} of 8 wavesamples used",
            f"   parameters sha256 {s['param_sha256']}",
            f"   wave data  sha256 {s['wave_sha256']}",
        ]
        widths = [max(len(h), 5) for h, _ in WS_COLUMNS]
        lines.append("   " + " ".join(h.rjust(w) for (h, _), w in zip(WS_COLUMNS, widths)))
        for ws in s["wavesamples"]:
            cells = []
            for (_h, key), w in zip(WS_COLUMNS, widths):
                v = ws.get(key)
                cells.append(
                    ("yes" if v else "no").rjust(w)
                    if isinstance(v, bool)
                    else ("-" if v is None else str(v)).rjust(w)
                )
            lines.append("   " + " ".join(cells))
        if "keyboard" in s:
            lines += keyboard_lines(s["keyboard"])
        progs = s["programs"]
        fields = [k for k in progs[0] if k not in ("number", "panel")]
        lines.append(
            "   program field (stored [panel])".ljust(36)
            + "".join(f"P{p['number']}".rjust(11) for p in progs)
        )
        for f in fields:
            row = "   " + f.ljust(33)
            for p in progs:
                cell = str(p[f]) + (f" [{p['panel'][f]}]" if f in p["panel"] else "")
                row += cell.rjust(11)
            lines.append(row)
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- extract


def _extract(args: argparse.Namespace) -> int:
    image = _wave.read_disk_image(args.image, force=args.force)
    disk = D.parse(image, force=True)
    files: list[tuple[str, bytes]] = []

    def with_sidecar(stem: str, data: bytes, side: dict) -> None:
        files.append((f"{stem}.pcm", data))
        files.append((f"{stem}.json", (json.dumps(side, indent=2) + "\n").encode()))

    for sname, snd in disk.sounds.items():
        with_sidecar(sname, snd.wave, _wave.sidecar("wave area", sname, snd.wave, args.image))
        for ws in snd.params.wavesamples:
            if not ws.used:
                continue
            stem = f"{sname}-ws{ws.number}"
            data = D.wavesample_bytes(snd.wave, ws)
            with_sidecar(
                stem,
                data,
                _wave.sidecar(
                    "wavesample", sname, data, args.image, **ws.to_dict(), rate=args.rate
                ),
            )
            files.append((f"{stem}.wav", wav_u8_bytes(data, args.rate)))
    # every target is checked before anything is written: a folder, a device, or the image
    # itself under another name (a link) is refused, and nothing is half extracted
    if Path(args.dir).is_file():
        raise InputError(
            args.dir,
            "exists and is a file, not a folder; give a folder to "
            "extract into (it is created when missing)",
        )
    out, created = prepare_output_dir(args.dir, what="output folder")
    for name, _data in files:
        check_output(out / name, inputs=[args.image], what="output file")
    for name, data in files:
        _write_out(out / name, data)
    print(
        f"{out}: {len(files)} files from {args.image}"
        + (" (synthetic template)" if disk.synthetic else "")
        + (f"; created {out}" if created else "")
    )
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
        return _wave.sound_name(sname), n, file
    return _wave.sound_name(target), None, file


def _parse_program(spec: str) -> tuple[str, int, str, int]:
    try:
        target, value = spec.split("=", 1)
        sname, prog, name = target.split(":", 2)
        p = int(prog)
        v = int(value, 0)
    except ValueError:
        raise InputError(
            spec, "expected SOUND:P:NAME=VALUE, e.g. lower1:1:filter_cutoff=80"
        ) from None
    if not 1 <= p <= 4:
        raise InputError(spec, f"program {p}: expected 1..4")
    if name not in P.PROGRAM_FIELDS:
        raise InputError(
            spec, f"unknown program field {name!r}; known: {', '.join(P.PROGRAM_FIELDS)}"
        )
    if not 0 <= v <= 255:
        raise InputError(spec, f"value {v}: expected 0..255 (as stored)")
    return _wave.sound_name(sname), p, name, v


def _write(args: argparse.Namespace) -> int:
    if not args.specs and not args.program:
        raise InputError("disk write", "nothing to write: give at least one SPEC or --program")
    specs = [_parse_spec(s) for s in args.specs]
    programs = [_parse_program(s) for s in args.program]
    hfe = _check_write_outputs(args, [args.template, *(file for _s, _n, file in specs)])
    image = _wave.read_disk_image(args.template, what="template image", force=args.force)
    synthetic = D.is_synthetic(image)
    reports = []
    for sname, number, file in specs:
        image, rep = _write_spec(image, sname, number, file, args, synthetic)
        reports.append(rep)
    for sname, p, name, v in programs:
        image = D.set_program_field(image, sname, p, name, v)
    _write_out(args.output, image)
    result = {
        "output": args.output,
        "template": args.template,
        "writes": reports,
        "programs": [{"sound": s, "program": p, "field": n, "value": v} for s, p, n, v in programs],
    }
    if D.is_synthetic(image):
        result["note"] = "the template is synthetic: this image does not boot a Mirage"
    rc = 0
    if hfe is not None:
        ok, msg = make_hfe(args.output, hfe)
        result["hfe"] = hfe if ok else None
        result["hfe_message"] = msg
        if not ok:
            rc = 2
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print_write(args, result, reports, programs, rc)
    return rc


def _check_write_outputs(args: argparse.Namespace, inputs: list[str]) -> str | None:
    """Check OUT.img (and OUT.hfe with --hfe) before anything is read; the .hfe path or None."""
    check_output(args.output, inputs=inputs, what="output image")
    hfe = str(Path(args.output).with_suffix(".hfe")) if args.hfe else None
    if hfe is not None:
        if Path(hfe) == Path(args.output):
            raise InputError(
                args.output, "--hfe writes OUT.hfe beside OUT.img: give the image another suffix"
            )
        check_output(hfe, inputs=inputs, what="output .hfe")
    return hfe


def _capacity(image: bytes, sname: str, number: int | None, template: str) -> int:
    """Bytes a SPEC's target holds: the whole wave area, or the wavesample's page range."""
    if number is None:
        return D.HALF
    ws = P.parse_sound_params(D.read_param_block(image, sname)).wavesample(number)
    if not ws.used:
        raise InputError(
            template,
            f"{sname} wavesample {number} is unused in this template "
            f"(end page {ws.end_page} < start page {ws.start_page})",
        )
    return ws.length


def _write_spec(
    image: bytes,
    sname: str,
    number: int | None,
    file: str,
    args: argparse.Namespace,
    synthetic: bool,
) -> tuple[bytes, dict]:
    """One SPEC written into ``image``: the new image and its report."""
    capacity = _capacity(image, sname, number, args.template)
    hint = SYNTHETIC_HINT if synthetic and number is not None else _wave.TOO_LONG_HINT
    if args.tile_cycle:
        wave = _wave.load_cycle(file, args, max_bytes=capacity, keep_zero=True)
    else:
        wave = _wave.load_wave(file, args, max_bytes=capacity, keep_zero=True, too_long_hint=hint)
    try:
        data = wave.data
        if args.tile_cycle:
            data = fill_with_cycle(data, capacity)
        if number is None:
            image, rep = D.write_wave_area(image, sname, data, allow_zero=True, force=True)
        else:
            image, rep = D.write_wavesample(image, sname, number, data, allow_zero=True, force=True)
    except FormatError as exc:
        raise InputError(file, str(exc)) from None
    rep["file"] = file
    rep["converted"] = wave.converted
    rep["how"] = wave.how
    if args.tile_cycle:
        rep["cycle_bytes"] = len(wave.data)
        rep["cycles"] = len(data) // len(wave.data)
    if wave.origin is not None:
        keys = ("image", "sound", "kind", "number")
        rep["extracted_from"] = {k: wave.origin[k] for k in keys if k in wave.origin}
    zero = _wave.zero_warning(wave, sname, number)
    rep["warnings"] = wave.warnings + ([zero] if zero else []) + rep["warnings"]
    return image, rep


def _print_write(
    args: argparse.Namespace,
    result: dict,
    reports: list[dict],
    programs: list[tuple[str, int, str, int]],
    rc: int,
) -> None:
    """The readable report of `disk write`: one line per write, warnings on stderr."""
    for rep in reports:
        where = f"{rep['sound']}" + (
            f" wavesample {rep['number']} (pages {rep['start_page']}..{rep['end_page']})"
            if "number" in rep
            else " wave area"
        )
        tiled = ""
        if "cycles" in rep:
            tiled = f", the cycle ({rep['cycle_bytes']:,} bytes) {rep['cycles']}×"
        print(
            f"{rep['file']} → {where}: {rep['written']:,} of {rep['capacity']:,} bytes, "
            f"{rep['unused']:,} unused (0x80){tiled}; {rep['how']}"
        )
        for w in rep["warnings"]:
            print(f"miragen: warning: {w}", file=sys.stderr)
    for s, p, n, v in programs:
        print(f"{s} program {p}: {n} = {v}")
    print(f"wrote {args.output}" + (f" ({result['note']})" if "note" in result else ""))
    if args.hfe:
        print(result["hfe_message"], file=sys.stdout if rc == 0 else sys.stderr)


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
            return (
                False,
                f"hxcfe exited with {proc.returncode} and made no .hfe: {' / '.join(tail)}",
            )
        os.replace(tmp_hfe, hfe_path)
    return True, f"wrote {hfe_path} with {exe}"


# --------------------------------------------------------------------------- template


def _template(args: argparse.Namespace) -> int:
    if not args.synthetic:
        raise InputError(
            args.output,
            "only --synthetic templates can be made here; a bootable template must be saved on a "
            "real Mirage (its operating system is Ensoniq's code and is never shipped)",
        )
    check_output(args.output, what="output image")
    _write_out(args.output, D.synthetic_template())
    print(
        f"wrote {args.output}: synthetic template, 6 sounds × 8 wavesamples of 32 pages. "
        "It has NO operating system and does NOT boot a Mirage; use it for tests and demos."
    )
    return 0
