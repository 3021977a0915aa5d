"""A whole playable sound ("keyboard"): up to 8 wavesamples laid out across one memory half.

1. :func:`plan_keyboard`: the sounds (Mirage 8-bit bytes, :class:`Sound`) → a
   :class:`Keyboard`: wavesamples one after another from page 0 (no overlap, 256 pages at most,
   refused clearly when they do not fit), top keys splitting the 61 keys, loop points on whole
   pages (:func:`miragen.audio.loops.find_loop`; a single cycle loops on all its pages), and a
   named :class:`Preset` of program parameters. :func:`octave_sounds` makes the sounds of one
   file at several octaves (each an octave higher and half as long).
2. :func:`apply_keyboard`: a 625-byte parameter block (read back from the Mirage, or a
   template's) → the same block with only what the keyboard must change: the control blocks'
   pages, loop points, top keys and tune, the unused wavesamples marked unused, the preset's
   program fields. Pointers, segment lists and every other byte stay as found.
3. :func:`write_keyboard_image` (a template-based disk image) or :func:`deliver_keyboard`
   (SysEx: the block read back, the wave pages by 0x0C, the block by 0x05/0x15, each read back).
4. :func:`keyboard_info` / :func:`keyboard_lines`: what each key plays, for ``disk info``.

UNCERTAIN and UNTESTED on hardware (docs/keyboard.md): changing start/end/loop pages and top
keys from outside the Mirage (FORMAT.md §3.1: the OS keeps segment lists it may not recompute);
the top key numbering and the key → wavesample rule (:func:`miragen.mirage.params.key_ranges`);
coarse tune counting octaves (:func:`octave_tunes`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..audio.io import read_audio
from ..audio.loops import LoopPoints, find_loop
from ..audio.mirage8 import pad_to_pages, prepare
from ..audio.resample import SUPPORT_MARGIN_S
from ..errors import FormatError, InputError
from ..limits import MIRAGE_RATE, PAGE
from ..mirage import disk
from ..mirage import params as P
from ..transport.base import LinkLost, Transport, TransportError
from ..transport.memory import (
    MemoryLink,
    TransferFailed,
    read_block_bytes,
    write_block_bytes,
    write_chunk_bytes,
)
from ..transport.memory import chunks as memory_chunks

PAGES = 256  # one 64 KB half
MAX_ZONES = P.WAVESAMPLES
LOOPS = ("auto", "on", "off", "cycle")

# --------------------------------------------------------------------------- presets


@dataclass(frozen=True)
class Preset:
    """Named program parameters. ``program`` holds panel values (stored = panel × the field's
    scale, FORMAT.md §3.1); ``loop``: ``auto`` (find_loop decides) or ``off`` (one-shots)."""

    name: str
    summary: str
    loop: str
    program: dict[str, int]

    def stored(self) -> dict[str, int]:
        """The fields as stored in a program parameter block."""
        return {k: v * (P.PROGRAM_FIELDS[k][1] or 1) for k, v in self.program.items()}


def _env(prefix: str, a: int, p: int, d: int, s: int, r: int) -> dict[str, int]:
    names = ("attack", "peak", "decay", "sustain", "release")
    return {f"{prefix}_{n}": v for n, v in zip(names, (a, p, d, s, r))}


#: The presets (docs/keyboard.md explains each value). Envelope times and levels 0..31, filter
#: cutoff 0..99 (stored ×2), resonance 0..40 (stored ×4), as on the front panel.
PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "organ",
            "sustains at full level while a key is held, filter open, short release",
            "auto",
            {
                "filter_cutoff": 70,
                "resonance": 0,
                **_env("filter", 0, 31, 31, 31, 6),
                **_env("amp", 0, 31, 31, 31, 6),
            },
        ),
        Preset(
            "pad",
            "slow swell, the filter opening with it, long release",
            "auto",
            {
                "filter_cutoff": 35,
                "resonance": 10,
                **_env("filter", 20, 31, 24, 22, 20),
                **_env("amp", 22, 31, 26, 28, 24),
            },
        ),
        Preset(
            "pluck",
            "instant attack, dies away to nothing, the filter closing as it decays",
            "auto",
            {
                "filter_cutoff": 30,
                "resonance": 12,
                **_env("filter", 0, 31, 12, 2, 10),
                **_env("amp", 0, 31, 14, 0, 10),
            },
        ),
        Preset(
            "drum",
            "one-shot: never loops, plays to its end, filter wide open",
            "off",
            {
                "filter_cutoff": 99,
                "resonance": 0,
                **_env("filter", 0, 31, 31, 31, 31),
                **_env("amp", 0, 31, 31, 31, 28),
            },
        ),
    )
}


def preset(name: str | Preset) -> Preset:
    """A preset by name (refused with the known names)."""
    if isinstance(name, Preset):
        return name
    if name not in PRESETS:
        raise InputError(name, f"unknown preset; known presets: {', '.join(PRESETS)}")
    return PRESETS[name]


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Sound:
    """One wavesample's sound: Mirage 8-bit bytes (no 0x00; padded to whole pages here).

    ``loop``: ``auto`` (the preset decides; find_loop places it), ``on`` (find_loop's loop, or
    the whole sound when find_loop finds none), ``off``, or ``cycle`` (a single cycle: loop all
    its pages). ``octave``: it holds the sound this many octaves up (:func:`octave_sounds`), so
    its coarse tune goes down as much."""

    data: bytes
    name: str = ""
    loop: str = "auto"
    octave: int = 0


@dataclass(frozen=True)
class Zone:
    """One wavesample of a keyboard, pages absolute in the half."""

    number: int  # 1..8
    name: str
    start_page: int
    pages: int
    top_key: int
    loop: LoopPoints  # absolute pages
    octave: int
    data: bytes  # pages × 256 bytes

    @property
    def end_page(self) -> int:
        return self.start_page + self.pages - 1

    def to_dict(self) -> dict[str, Any]:
        lp = self.loop
        return {
            "wavesample": self.number,
            "name": self.name,
            "start_page": self.start_page,
            "end_page": self.end_page,
            "pages": self.pages,
            "top_key": self.top_key,
            "top_note": P.key_name(self.top_key),
            "loop_on": lp.loop_on,
            "loop_start_page": lp.loop_start_page,
            "loop_end_page": lp.loop_end_page,
            "loop_end_fine": lp.loop_end_fine,
            "octave": self.octave,
            "wave_sha256": hashlib.sha256(self.data).hexdigest(),
        }


@dataclass(frozen=True)
class Keyboard:
    """The plan: zones from page 0, the preset, and the programs (1..4) it writes."""

    zones: tuple[Zone, ...]
    preset: Preset
    programs: tuple[int, ...] = (1, 2, 3, 4)
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def pages(self) -> int:
        return sum(z.pages for z in self.zones)

    @property
    def wave(self) -> bytes:
        """Pages 0 .. pages−1 of the half, as the keyboard fills them."""
        return b"".join(z.data for z in self.zones)

    def to_dict(self) -> dict[str, Any]:
        return {
            "preset": self.preset.name,
            "programs": list(self.programs),
            "pages": self.pages,
            "bytes": self.pages * PAGE,
            "zones": [z.to_dict() for z in self.zones],
            "warnings": list(self.warnings),
        }


def even_top_keys(n: int) -> list[int]:
    """Top keys that split the 61 keys into ``n`` ranges as even as can be, the last at 60."""
    return [round((i + 1) * P.KEYS / n) - 1 for i in range(n)]


def _check_top_keys(top_keys: Sequence[int], n: int) -> list[str]:
    """Refuse top keys that are not one per sound, rising, 0..60; warn when keys are left over."""
    keys = [int(k) for k in top_keys]
    if len(keys) != n:
        raise InputError("top keys", f"{len(keys)} given for {n} sound(s); give one per sound")
    for a, b in zip(keys, keys[1:]):
        if b <= a:
            raise InputError("top keys", f"{b} after {a}: each top key must be above the last")
    if keys[0] < 0 or keys[-1] > P.TOP_KEY_MAX:
        raise InputError("top keys", f"expected keys 0..{P.TOP_KEY_MAX}, rising")
    if keys[-1] < P.TOP_KEY_MAX:
        return [
            f"the highest top key is {keys[-1]} ({P.key_name(keys[-1])}): keys above it "
            "play no wavesample of this keyboard"
        ]
    return []


def zone_loop(data: bytes, loop: str, preset_loop: str) -> LoopPoints:
    """Loop points (relative pages) of one sound of whole pages."""
    pages = len(data) // PAGE
    whole = LoopPoints(0, pages - 1, 0, pages - 1, 255, True)
    if loop == "cycle":
        return whole
    if loop == "off" or (loop == "auto" and preset_loop == "off"):
        return LoopPoints(0, pages - 1, pages - 1, pages - 1, 255, False)
    found = find_loop(data)
    if loop == "on" and not found.loop_on:
        return whole
    return found


def _sound_bytes(s: Sound, i: int) -> bytes:
    """The sound's bytes padded to whole pages; refused when empty or holding 0x00."""
    name = s.name or f"sound {i + 1}"
    if s.loop not in LOOPS:
        raise InputError(name, f"loop {s.loop!r}: expected one of {', '.join(LOOPS)}")
    data = bytes(s.data)
    if not data:
        raise InputError(name, "no wave data")
    zero = data.find(b"\x00")
    if zero >= 0:
        raise InputError(
            name, f"byte {zero} is 0x00, which stops the Mirage's sound chip (convert it first)"
        )
    return bytes(pad_to_pages(data).tobytes())


def plan_keyboard(
    sounds: Sequence[Sound | bytes],
    preset_name: str | Preset = "organ",
    *,
    top_keys: Sequence[int] | None = None,
    programs: Sequence[int] = (1, 2, 3, 4),
) -> Keyboard:
    """Lay ``sounds`` (1..8, lowest keys first) out across one half.

    Wavesample n+1 starts on the page after wavesample n; all of them together must fit the
    256 pages of a half (else :class:`InputError` listing each sound's pages). ``top_keys``:
    one per sound, rising, 0..60 (default: :func:`even_top_keys`)."""
    pre = preset(preset_name)
    items = [s if isinstance(s, Sound) else Sound(bytes(s)) for s in sounds]
    if not 1 <= len(items) <= MAX_ZONES:
        raise InputError("keyboard", f"{len(items)} sounds; a half holds 1 to {MAX_ZONES}")
    for p in programs:
        if not 1 <= int(p) <= P.PROGRAMS:
            raise InputError("keyboard", f"program {p}: expected 1..{P.PROGRAMS}")
    data = [_sound_bytes(s, i) for i, s in enumerate(items)]
    pages = [len(d) // PAGE for d in data]
    if sum(pages) > PAGES:
        each = ", ".join(
            f"{s.name or f'sound {i + 1}'} {n}" for i, (s, n) in enumerate(zip(items, pages))
        )
        raise InputError(
            "keyboard",
            f"the sounds take {sum(pages)} pages ({each}); a half holds {PAGES} pages "
            f"({PAGES * PAGE:,} bytes): use fewer or shorter sounds, fewer octaves, or --cut",
        )
    keys = list(top_keys) if top_keys is not None else even_top_keys(len(items))
    warnings = _check_top_keys(keys, len(items))
    zones, start = [], 0
    for i, (s, d) in enumerate(zip(items, data)):
        lp = zone_loop(d, s.loop, pre.loop)
        if s.loop == "on" and not find_loop(d).loop_on:
            warnings.append(f"{s.name or f'sound {i + 1}'}: dies away; looped over all its pages")
        absolute = LoopPoints(
            start, start + lp.end_page, start + lp.loop_start_page, start + lp.loop_end_page,
            lp.loop_end_fine, lp.loop_on,
        )  # fmt: skip
        zones.append(Zone(i + 1, s.name, start, len(d) // PAGE, keys[i], absolute, s.octave, d))
        start += len(d) // PAGE
    return Keyboard(tuple(zones), pre, tuple(int(p) for p in programs), tuple(warnings))


# --------------------------------------------------------------------------- octaves


def octave_sounds(
    path: str,
    octaves: int,
    *,
    rate: int = MIRAGE_RATE,
    raw_rate: int = MIRAGE_RATE,
    dither: str = "tpdf",
    cut: bool = False,
    loop: str = "auto",
) -> tuple[list[Sound], list[str]]:
    """One file at ``octaves`` octaves: sound k (0-based) is the file converted at
    ``rate / 2**k`` Hz, so it plays k octaves up at the same read rate and takes half the pages
    of sound k−1 (each resampled from the source with an anti-aliasing filter). All of them
    must fit one half: the source is cut to fit with ``cut`` (a fade-out), else refused."""
    if not 1 <= int(octaves) <= MAX_ZONES:
        raise InputError(path, f"--octaves {octaves}: expected 1..{MAX_ZONES}")
    rates = [max(1, round(rate / 2**k)) for k in range(octaves)]
    budget = PAGES
    while budget > 1 and sum(math.ceil(budget / 2**k) for k in range(octaves)) > PAGES:
        budget -= 1
    keep = budget * PAGE / float(rate) + SUPPORT_MARGIN_S
    audio = read_audio(path, raw_rate=raw_rate, keep_seconds=keep)
    hint = (
        f"use --cut, fewer octaves, or a shorter sound ({octaves} octaves of it must fit 256 pages)"
    )
    sounds, warnings = [], []
    for k, r in enumerate(rates):
        prepared = prepare(
            audio.samples,
            audio.rate,
            target_rate=r,
            max_bytes=math.ceil(budget / 2**k) * PAGE,
            dither=dither,
            strict=not cut,
            source=f"{path} (octave {k + 1}, {r:,} Hz)",
            too_long_hint=hint,
            total_frames=audio.total_frames,
        )
        warnings += prepared.warnings
        data = prepared.data[: prepared.samples or len(prepared.data)]
        sounds.append(Sound(data, f"{Path(path).name} +{k} oct", loop, k))
    return sounds, warnings


def octave_tunes(base: int, octaves: Sequence[int]) -> tuple[list[int], list[str]]:
    """Coarse tune of each zone: ``base`` (wavesample 1's) lowered by the zone's octave, so the
    keyboard plays on in tune across the splits. UNCERTAIN (isolated here): coarse tune counts
    octaves, as the Mirage Sound Editor's sample-rate table reads it [S10]. When ``base`` is too
    low for that, every zone goes up the same number of octaves (a warning says so)."""
    lowest = base - max(octaves)
    lift = max(0, -lowest)
    tunes = [base - k + lift for k in octaves]
    if any(t > 255 for t in tunes):
        raise InputError("keyboard", f"coarse tune {base}: cannot lower it by octaves")
    warnings = []
    if lift:
        warnings.append(
            f"wavesample 1's coarse tune is {base}: too low to lower it by {max(octaves)} "
            f"octave(s), so the whole keyboard sounds {lift} octave(s) higher"
        )
    return tunes, warnings


# --------------------------------------------------------------------------- the block


def _unused(block: bytes, number: int) -> bytes:
    """Mark wavesample ``number`` unused (end page below start page, FORMAT.md §3.1), loop off:
    its old pages may lie under the keyboard's."""
    ws = P.parse_sound_params(block).wavesample(number)
    if ws.start_page >= 1:
        return P.set_control_fields(block, number, end_page=ws.start_page - 1, loop_on=0)
    return P.set_control_fields(block, number, start_page=1, end_page=0, loop_on=0)


def apply_keyboard(block: bytes, keyboard: Keyboard) -> tuple[bytes, list[str]]:
    """``block`` (625 bytes, from the Mirage or a template) with the keyboard in it, and the
    warnings. Only these bytes change: each zone's start/end page, loop points and loop switch,
    top key, coarse and fine tune (wavesample 1's for all; octave zones lower the coarse tune,
    :func:`octave_tunes`); the other wavesamples marked unused; the preset's program fields
    (and an initial wavesample that no longer exists, set to wavesample 1)."""
    block = bytes(block)
    params = P.parse_sound_params(block)
    first = params.wavesample(1)
    tunes, warnings = octave_tunes(first.coarse_tune, [z.octave for z in keyboard.zones])
    for z, coarse in zip(keyboard.zones, tunes):
        lp = z.loop
        block = P.set_control_fields(
            block,
            z.number,
            start_page=z.start_page,
            end_page=z.end_page,
            loop_start_page=lp.loop_start_page,
            loop_end_page=lp.loop_end_page,
            loop_end_fine=lp.loop_end_fine,
            loop_on=int(lp.loop_on),
            top_key=z.top_key,
            coarse_tune=coarse,
            fine_tune=first.fine_tune,
        )
    for number in range(len(keyboard.zones) + 1, P.WAVESAMPLES + 1):
        block = _unused(block, number)
    for prog in keyboard.programs:
        for name, value in keyboard.preset.stored().items():
            block = P.set_program_field(block, prog, name, value)
        initial = P.parse_sound_params(block).programs[prog - 1].stored()["initial_wavesample"]
        if initial >= len(keyboard.zones):
            block = P.set_program_field(block, prog, "initial_wavesample", 0)
    problems = P.block_problems(block) + [
        f"wavesamples {a} and {b} overlap" for a, b in P.overlapping(block)
    ]
    if problems:  # a bug here, never the user's input
        raise FormatError("the keyboard's parameter block is not valid: " + "; ".join(problems))
    return block, warnings


def changed_fields(old: bytes, new: bytes) -> list[str]:
    """The fields of the block that differ, in words (``wavesample 2 top_key``…)."""
    return [P.describe_offset(i) for i in range(P.BLOCK_SIZE) if old[i] != new[i]]


# --------------------------------------------------------------------------- disk image


def write_keyboard_image(
    template: bytes, keyboard: Keyboard, sound: str, *, force: bool = False
) -> tuple[bytes, dict[str, Any]]:
    """The keyboard into ``sound`` (lower1..upper3) of a copy of ``template``: its parameter
    block (:func:`apply_keyboard`) and the pages it uses; the rest of the wave area and every
    other byte of the image stay as found. An implausible template is refused unless
    ``force``. Returns the image and a report."""
    disk.check_image(template)
    if not force:
        disk.check_plausible(template)
    old = disk.read_param_block(template, sound)
    block, warnings = apply_keyboard(old, keyboard)
    area = disk.read_wave(template, sound)
    wave = keyboard.wave + area[len(keyboard.wave) :]
    image, _report = disk.write_wave_area(template, sound, wave, allow_zero=True, force=True)
    out = bytearray(image)
    off = disk.param_offset(sound)
    out[off : off + P.BLOCK_SIZE] = block
    report = {
        "sound": sound,
        **keyboard.to_dict(),
        "changed": changed_fields(old, block),
        "warnings": list(keyboard.warnings) + warnings,
    }
    if disk.is_synthetic(template):
        report["note"] = "the template is synthetic: this image does not boot a Mirage"
    return bytes(out), report


# --------------------------------------------------------------------------- SysEx


def keyboard_wire_bytes(keyboard: Keyboard, chunk_bytes: int, verify: bool, ack: bool) -> int:
    """Bytes on the wire, both ways, for :func:`deliver_keyboard` when nothing goes wrong."""
    data = sum(
        write_chunk_bytes(n, verify, ack)
        for _a, n in memory_chunks(0, keyboard.pages * PAGE, chunk_bytes)
    )
    return read_block_bytes(2) + data + write_block_bytes(verify)


def deliver_keyboard(
    transport: Transport,
    keyboard: Keyboard,
    half: str,
    *,
    verify: bool = True,
    require_ack: bool = True,
    chunk_pages: int = 16,
    tries: int = 3,
    ack_margin_s: float = 2.0,
    backoff_s: float = 0.5,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Put ``keyboard`` into ``half`` (lower/upper) of a Mirage by SysEx:

    1. the half's parameter block is read (0x03/0x13, two equal replies): the Mirage's own
       pointers and segment lists are the starting point;
    2. the keyboard's pages go by 0x0C in chunks of ``chunk_pages``, each acknowledged and
       (``verify``) read back by 0x0B;
    3. the block with the keyboard in it (:func:`apply_keyboard`) goes by 0x05/0x15 and is read
       back (``verify``).

    Returns ``{"ok", "verified", "error", "half", …figures, …counts, "keyboard", "changed"}``;
    a failure (after the tries, or a lost link) is ``ok: False`` with the reason."""
    if half not in ("lower", "upper"):
        raise InputError(half, "half: expected lower or upper")
    chunk_bytes = max(1, int(chunk_pages)) * PAGE
    total = keyboard_wire_bytes(keyboard, chunk_bytes, verify or not require_ack, require_ack)
    report = (lambda done: progress(min(done, total), total)) if progress else None
    link = MemoryLink(
        transport,
        tries=tries,
        ack_margin_s=ack_margin_s,
        backoff_s=backoff_s,
        require_ack=require_ack,
        progress=report,
    )
    out: dict[str, Any] = {"ok": False, "verified": False, "error": None, "half": half}
    try:
        old = link.read_block(half)
        block, warnings = apply_keyboard(old, keyboard)
        out["changed"] = changed_fields(old, block)
        out["warnings"] = list(keyboard.warnings) + warnings
        link.write_area(half, 0, keyboard.wave, chunk_bytes, verify=verify)
        link.write_block(half, block, verify=verify)
        out.update(ok=True, verified=verify or not require_ack)
    except TransferFailed as exc:
        out["error"] = str(exc)
    except LinkLost as exc:
        out["error"] = f"link lost: {exc}"
    except TransportError as exc:
        out["error"] = str(exc)
    finally:
        link.close()
    out.update(link.figures(), **link.stats.to_dict(), transport=transport.name)
    out["keyboard"] = keyboard.to_dict()
    return out


# --------------------------------------------------------------------------- disk info


def keyboard_info(block: bytes, wave: bytes) -> list[dict[str, Any]]:
    """What each wavesample of a sound plays: keys (:func:`miragen.mirage.params.key_ranges`),
    pages, loop, and the SHA-256 of its bytes. One dict per wavesample 1..8."""
    params = P.parse_sound_params(block)
    ranges = P.key_ranges(params)
    out = []
    for ws in params.wavesamples:
        row: dict[str, Any] = {"wavesample": ws.number, "used": ws.used}
        if ws.used:
            keys = ranges.get(ws.number)
            data = disk.wavesample_bytes(wave, ws)
            row.update(
                keys=list(keys) if keys else None,
                notes=[P.key_name(keys[0]), P.key_name(keys[1])] if keys else None,
                top_key=ws.top_key,
                start_page=ws.start_page,
                end_page=ws.end_page,
                bytes=len(data),
                loop_on=bool(ws.loop_on),
                loop_start_page=ws.loop_start_page,
                loop_end_page=ws.loop_end_page,
                loop_end_fine=ws.loop_end_fine,
                wave_sha256=hashlib.sha256(data).hexdigest(),
            )
        out.append(row)
    return out


def keyboard_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The readable form of :func:`keyboard_info`: one line per wavesample."""
    lines = [
        "   keyboard (keys 0..60 = C2..C7; a key plays the first used wavesample whose top key "
        "is at or above it):",
        "     ws  keys    notes        top  pages       bytes   loop                sha256",
    ]
    for r in rows:
        n = r["wavesample"]
        if not r["used"]:
            lines.append(f"     {n:>2}  unused")
            continue
        keys = f"{r['keys'][0]}..{r['keys'][1]}" if r["keys"] else "none"
        notes = f"{r['notes'][0]}..{r['notes'][1]}" if r["notes"] else "(no key reaches it)"
        pages = f"{r['start_page']}..{r['end_page']}"
        loop = (
            f"on {r['loop_start_page']}→{r['loop_end_page']}.{r['loop_end_fine']}"
            if r["loop_on"]
            else "off"
        )
        lines.append(
            f"     {n:>2}  {keys:<7} {notes:<12} {r['top_key']:>3}  {pages:<9} {r['bytes']:>7,}"
            f"   {loop:<19} {r['wave_sha256'][:12]}"
        )
    return lines
