"""Deliver a sound into a Mirage disk image: the one path the CLI, the daemon and the demo use.

1. :func:`load_template`: a template made on a real Mirage (read as a regular file, checked for
   size and plausibility) or the synthetic, non-booting template.
2. :func:`place`: the sound into wavesample N of a sound of the image; a single cycle (whole
   256-byte pages) is repeated to fill the wavesample's page range, so it plays for the whole
   range and any page-aligned loop is seamless (no 0x80 tail).
3. :func:`publish`: the image written atomically, FlashFloppy's ``IMG.CFG`` beside it when
   asked, and a copy (with ``IMG.CFG`` when the stick has none) on the Gotek's USB stick.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..audio.loops import fill_with_cycle
from ..errors import FormatError, InputError
from ..fsutil import atomic_copy, atomic_write_bytes, atomic_write_text, read_regular
from ..mirage import disk, params

# FlashFloppy (Gotek) IMG.CFG for Mirage images: one file, shipped as package data;
# deploy/IMG.CFG is a link to it.
IMG_CFG = resources.files("miragen").joinpath("data/IMG.CFG").read_text(encoding="utf-8")
IMG_CFG_SECTION = "[::450560]"  # the section FlashFloppy needs to read a Mirage image


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
) -> Placed:
    """``data`` into wavesample ``number`` of ``sound``; a ``cycle`` fills the page range.

    Raises :class:`~miragen.errors.FormatError` when the wavesample is unused or the data does
    not fit (the caller names the file)."""
    if cycle:
        ws = wavesample(image, sound, number)
        if ws.used and ws.length >= len(data):  # an unused wavesample: write_wavesample says so
            data = fill_with_cycle(data, ws.length)
    image, report = disk.write_wavesample(
        image, sound, number, data, allow_zero=allow_zero, force=force
    )
    tiled = max(1, report.get("written", len(data)) // max(1, len(data)))
    return Placed(image, report, tiled, list(report.get("warnings", [])))


def publish(
    image: bytes, path: str | Path, *, img_cfg: bool = True, stick: str = ""
) -> dict[str, Any]:
    """Write ``image`` to ``path`` atomically (with ``IMG.CFG`` beside it when ``img_cfg``) and
    copy it to the USB ``stick`` folder when one is configured. Returns ``{"ok", "image",
    "usb_stick", "warnings", "error"}``; a stick that cannot be written is ``ok: False`` with
    the reason (the image itself is written)."""
    out = atomic_write_bytes(path, image)
    if img_cfg:
        atomic_write_text(out.parent / "IMG.CFG", IMG_CFG)
    res: dict[str, Any] = {"ok": True, "image": str(out), "warnings": []}
    if stick:
        try:
            copied = atomic_copy(out, Path(stick) / out.name)
            cfg_path = Path(stick) / "IMG.CFG"
            if not cfg_path.exists():
                atomic_write_text(cfg_path, IMG_CFG)
            elif IMG_CFG_SECTION not in cfg_path.read_text(encoding="utf-8", errors="replace"):
                res["warnings"].append(
                    f"{cfg_path} exists without a {IMG_CFG_SECTION} section; FlashFloppy will not "
                    "read the image (add the section from deploy/IMG.CFG)"
                )
            res["usb_stick"] = str(copied)
        except (OSError, InputError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            res.update(ok=False, error=f"cannot copy to the USB stick {stick}: {why}")
    return res


def report_json(report: dict[str, Any]) -> dict[str, Any]:
    """A write report as plain JSON types."""
    return json.loads(json.dumps(report, default=str))
