"""Deliver a sound into a Mirage disk image: the one path the CLI, the daemon and the demo use.

1. :func:`load_template`: a template made on a real Mirage (read as a regular file, checked for
   size and plausibility) or the synthetic, non-booting template.
2. :func:`place`: the sound into wavesample N of a sound of the image; a single cycle (whole
   256-byte pages) is repeated to fill the wavesample's page range, so it plays for the whole
   range and any page-aligned loop is seamless (no 0x80 tail).
3. :func:`publish`: the image written atomically, FlashFloppy's ``IMG.CFG`` beside it when
   asked, and a copy on the Gotek's USB stick (:func:`miragen.app.stick.deliver`: a name
   FlashFloppy lists in delivery order, the stick's index, at most N of Miragen's images).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..audio.loops import fill_with_cycle, find_loop, loop_click_db
from ..errors import FormatError, InputError, MiragenError
from ..fsutil import atomic_write_bytes, atomic_write_text, read_regular
from ..mirage import disk, params
from . import stick as stick_app

# FlashFloppy (Gotek) IMG.CFG for Mirage images: one file, shipped as package data;
# deploy/IMG.CFG is a link to it.
IMG_CFG = stick_app.IMG_CFG
IMG_CFG_SECTION = stick_app.IMG_CFG_SECTION  # the section FlashFloppy needs for a Mirage image


def load_template(path: str | Path | None, *, force: bool = False) -> bytes:
    """The template image at ``path`` (checked: a regular file of the right size whose control
    blocks are plausible, unless ``force``), or the synthetic template when ``path`` is empty."""
    if not path:
        return disk.synthetic_template()
    data = read_regular(path, max_bytes=disk.SIZE, what="template image")
    try:
        disk.check_image(data)
        if not force:
            disk.check_plausible(data)
    except FormatError as exc:
        raise InputError(path, str(exc)) from None
    return data


def wavesample(image: bytes, sound: str, number: int) -> params.WavesampleControl:
    """The control block of wavesample ``number`` (1..8) of ``sound`` in ``image``."""
    return params.parse_sound_params(disk.read_param_block(image, sound)).wavesample(number)


def is_cycle(data: bytes) -> bool:
    """Whole 256-byte pages: what a single cycle is once it is ready for the Mirage."""
    return 0 < len(data) and len(data) % 256 == 0


@dataclass
class Placed:
    image: bytes
    report: dict[str, Any]  # disk.write_wavesample's report
    tiled: int = 1  # how many times the cycle was repeated
    warnings: list[str] = field(default_factory=list)


def place(
    image: bytes,
    sound: str,
    number: int,
    data: bytes,
    *,
    cycle: bool = False,
    allow_zero: bool = False,
    force: bool = False,
    loop: bool = False,
) -> Placed:
    """``data`` into wavesample ``number`` of ``sound``; a ``cycle`` fills the page range.

    ``loop`` (a one-shot): the wavesample's loop points and switch are set to
    :func:`~miragen.audio.loops.find_loop`'s choice for ``data`` (loop on for a sustained sound,
    off for one that dies away), inside the page range the template gives it; without it the
    template's loop is kept. Raises :class:`~miragen.errors.FormatError` when the wavesample is
    unused or the data does not fit (the caller names the file)."""
    one = len(data)  # one cycle's bytes, before it fills the page range
    if cycle:
        ws = wavesample(image, sound, number)
        if ws.used and ws.length >= len(data):  # an unused wavesample: write_wavesample says so
            data = fill_with_cycle(data, ws.length)
    image, report = disk.write_wavesample(
        image, sound, number, data, allow_zero=allow_zero, force=force
    )
    if loop and not cycle:
        image, report["loop"] = _set_loop(image, sound, number, data)
        report["warnings"] = [  # the template's loop is gone: its warning with it
            w for w in report.get("warnings", []) if not w.startswith("loop end page")
        ]
    tiled = max(1, report.get("written", len(data)) // max(1, one))
    return Placed(image, report, tiled, list(report.get("warnings", [])))


def _set_loop(image: bytes, sound: str, number: int, data: bytes) -> tuple[bytes, dict[str, Any]]:
    """Wavesample ``number``'s loop fields set to ``data``'s loop (pages relative to its start
    page made absolute); returns the image and the loop written, with its figures."""
    ws = wavesample(image, sound, number)
    lp = find_loop(data)
    fields = {
        "loop_start_page": ws.start_page + lp.loop_start_page,
        "loop_end_page": ws.start_page + lp.loop_end_page,
        "loop_end_fine": lp.loop_end_fine,
        "loop_on": int(lp.loop_on),
    }
    block = params.set_control_fields(disk.read_param_block(image, sound), number, **fields)
    out = bytearray(image)
    off = disk.param_offset(sound)
    out[off : off + params.BLOCK_SIZE] = block
    written = dict(fields)
    if lp.loop_on:
        written["click_db"] = round(float(loop_click_db(data, lp)), 1)
    return bytes(out), written


def publish(
    image: bytes,
    path: str | Path,
    *,
    img_cfg: bool = True,
    stick: str = "",
    stick_keep: int = 0,
    about: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``image`` to ``path`` atomically (with ``IMG.CFG`` beside it when ``img_cfg``) and
    put it on the USB ``stick`` folder when one is configured (:func:`.stick.deliver`: named
    ``NNNN-<path's stem>.img``, listed with ``about`` in the stick's index, Miragen's images
    beyond ``stick_keep`` removed). Returns ``{"ok", "image", "usb_stick", "stick_removed",
    "warnings", "error"}``; a stick that cannot be written is ``ok: False`` with the reason
    (the image itself is written)."""
    out = atomic_write_bytes(path, image)
    if img_cfg:
        atomic_write_text(out.parent / "IMG.CFG", IMG_CFG)
    res: dict[str, Any] = {"ok": True, "image": str(out), "warnings": []}
    if stick:
        try:
            put = stick_app.deliver(stick, image, label=out.stem, keep=stick_keep, about=about)
        except (OSError, MiragenError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            res.update(ok=False, error=f"cannot copy to the USB stick {stick}: {why}")
        else:
            res["usb_stick"] = put["usb_stick"]
            res["warnings"] += put["warnings"]
            if put["removed"]:
                res["stick_removed"] = put["removed"]
    return res


def describe(
    sound: str,
    number: int,
    source: str,
    *,
    request: str = "",
    cls: str = "",
    template: str = "",
    by: str = "",
) -> dict[str, Any]:
    """What a delivered image holds, for the stick's index: ``source`` in wavesample
    ``number`` of ``sound`` (made for ``request``, of class ``cls``); every other wavesample is
    ``template``'s (empty: the synthetic one)."""
    return {
        "request": request,
        "class": cls,
        "contents": [{"sound": sound, "wavesample": number, "source": source, "class": cls}],
        "template": Path(template).name if template else "synthetic",
        "by": by,
    }


def report_json(report: dict[str, Any]) -> dict[str, Any]:
    """A write report as plain JSON types."""
    return json.loads(json.dumps(report, default=str))
