"""Configuration: a typed schema, an embedded default, and clear errors.

The schema lives in ``SCHEMA`` (one entry per key: type, default, check, help). The embedded
default file ``miragen/data/default.toml`` is generated from it and shown by
``miragen config show``. Every problem is reported with its dotted key and the reason; a file
with problems is refused as a whole (``ConfigError`` lists them all).
"""

from __future__ import annotations

import copy
import difflib
import math
import os
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from .errors import ConfigError, InputError
from .fsutil import read_regular
from .limits import SOURCE_RATE_MAX, SOURCE_RATE_MIN, TARGET_RATE_MAX, TARGET_RATE_MIN

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 (JetPack 6)
    import tomli as tomllib

DEFAULT_CONFIG_PATHS = ("/etc/miragen/miragen.toml",)
ENV_CONFIG = "MIRAGEN_CONFIG"
MAX_CONFIG_BYTES = 16 * 2**20  # a configuration file is a few KB; more is not one


@dataclass(frozen=True)
class Key:
    """One configuration key."""

    type: type | tuple[type, ...]
    default: Any
    help: str
    check: Callable[[Any], str | None] | None = None  # returns a reason when bad
    choices: tuple[Any, ...] | None = None


def _zero_or(check: Callable[[Any], str | None]) -> Callable[[Any], str | None]:
    """``check``, with 0 allowed besides (0: off)."""

    def zero_or(v: Any) -> str | None:
        if v == 0:
            return None
        reason = check(v)
        return None if reason is None else reason.replace(" (got", " or 0: off (got", 1)

    return zero_or


def _range(lo: float | None = None, hi: float | None = None) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        if isinstance(v, float) and not math.isfinite(v):
            return "must be a finite number"
        if lo is not None and v < lo:
            return f"must be ≥ {lo} (got {v})"
        if hi is not None and v > hi:
            return f"must be ≤ {hi} (got {v})"
        return None

    check.lo = lo  # type: ignore[attr-defined]  # read by key_range() for the command line
    check.hi = hi  # type: ignore[attr-defined]
    return check


def _listen(v: str) -> str | None:
    host, sep, port = v.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return f"must be ADDRESS:PORT, e.g. 127.0.0.1:8808 or 0.0.0.0:8808 (got {v!r})"
    return None


def set_items(text: str) -> list[str]:
    """``train.set``'s text ("width=32, mbstd=false") → its items, blanks dropped."""
    return [item.strip() for item in text.split(",") if item.strip()]


def set_pair(item: str) -> tuple[str, str] | None:
    """One ``KEY=VALUE`` item (``train.set``, ``--set``) → ``(key, value)``, the key with ``-``
    read as ``_`` and the value as text (the engine types it); None when it is not one."""
    key, sep, value = item.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or not key.isidentifier():
        return None
    return key, value.strip()


def _sets(v: str) -> str | None:
    """``train.set``: KEY=VALUE items separated by commas, each key once (the engine checks the
    keys and values themselves when it trains)."""
    seen: set[str] = set()
    for item in set_items(v):
        pair = set_pair(item)
        if pair is None:
            return f"must be KEY=VALUE items separated by commas (got {item!r})"
        if pair[0] in seen:
            return f"gives '{pair[0]}' twice"
        seen.add(pair[0])
    return None


TRANSPORT_KINDS = {
    "midi:": "midi:<port name part>",
    "serial:": "serial:<device or pyserial URL>",
    "raw:": "raw:/dev/snd/midiC*D*",
}
TRANSPORT_FORMS = (
    "'sim', 'midi:<port name part>', 'serial:<device or pyserial URL>' or 'raw:/dev/snd/midiC*D*'"
)


def _transport(v: str) -> str | None:
    spec = v.strip()
    if spec == "sim":
        return None
    if not spec:
        return f"is empty; must be {TRANSPORT_FORMS}"
    for kind, form in TRANSPORT_KINDS.items():
        if spec.startswith(kind):
            if not spec[len(kind) :].strip():
                what = "MIDI port" if kind == "midi:" else "device"
                return f"{v!r} names no {what}; write {form}"
            return None
    return f"must be {TRANSPORT_FORMS}"


def _midi_input(v: str) -> str | None:
    if v == "":
        return None
    return _transport(v) if v.strip() != "sim" else None


def _hex_pattern(v: str) -> str | None:
    parts = v.replace(",", " ").split()
    if not parts:
        return "must list hex bytes, e.g. 'F0 7D 01 * F7' (* matches any byte)"
    for p in parts:
        if p == "*":
            continue
        try:
            b = int(p, 16)
        except ValueError:
            return f"'{p}' is not a hex byte"
        if not 0 <= b <= 255:
            return f"'{p}' is not a byte"
    return None


SOUNDS = ("lower1", "upper1", "lower2", "upper2", "lower3", "upper3")

SCHEMA: dict[str, dict[str, Key]] = {
    "paths": {
        "state": Key(
            str,
            "/var/lib/miragen",
            "state folder: inbox/, requests/, rejected/, corpus/, models/, out/, miragen.db",
        ),
        "usb_stick": Key(
            str,
            "",
            "folder of a mounted Gotek USB stick; disk images and IMG.CFG are copied there "
            "(empty: off)",
        ),
        "stick_keep": Key(
            int,
            50,
            "disk images Miragen keeps on the USB stick: beyond this, its oldest are removed "
            "(only images it wrote, listed in the stick's MIRAGEN.JSON, unchanged; 0: keep all)",
            _range(0, 9999),
        ),
    },
    "audio": {
        "rate": Key(
            int,
            29411,
            "target sample rate in Hz (Mirage default 1 MHz / 34)",
            _range(TARGET_RATE_MIN, TARGET_RATE_MAX),
        ),
        "raw_rate": Key(
            int,
            29411,
            "rate assumed for headerless .pcm/.raw input",
            _range(SOURCE_RATE_MIN, SOURCE_RATE_MAX),
        ),
        "max_bytes": Key(
            int,
            65536,
            "longest output in bytes; longer input is cut with a fade-out (or refused with strict)",
            _range(256, 65536),
        ),
        "dither": Key(str, "tpdf", "dither when quantising to 8 bits", choices=("tpdf", "none")),
        "strict": Key(bool, False, "refuse input longer than max_bytes instead of cutting it"),
        "max_input_mb": Key(
            int, 64, "refuse input files larger than this many MB", _range(1, 4096)
        ),
        "fade_ms": Key(float, 10.0, "fade-out applied when cutting a long input", _range(0, 1000)),
    },
    "train": {
        "engine": Key(str, "wavegan", "generative engine", choices=("wavegan", "pygan")),
        "mode": Key(
            str,
            "cycle",
            "what a class holds: single cycles or one-shots",
            choices=("cycle", "oneshot"),
        ),
        "oneshot_classes": Key(
            str,
            "",
            "with mode = cycle: the classes that hold one-shots all the same, as names or shell "
            'patterns separated by commas (e.g. "drums, hit-*")',
        ),
        "kit": Key(
            bool,
            False,
            "train the one-shot classes together as one conditional model (a kit: kick/, "
            "snare/, hat/ …)",
        ),
        "seconds": Key(int, 300, "time budget per training run", _range(1, 7 * 86400)),
        "device": Key(
            str,
            "auto",
            "torch device: auto (CUDA when present), cpu or cuda",
            choices=("auto", "cpu", "cuda"),
        ),
        "debounce_s": Key(
            float,
            30.0,
            "wait this long after new material before retraining a class",
            _range(0, 86400),
        ),
        "checkpoint_every": Key(int, 200, "write a checkpoint every N steps", _range(1, 10**7)),
        "threads": Key(
            int,
            0,
            "CPU threads for torch in each training (0: all cores, shared among the workers)",
            _range(0, 256),
        ),
        "set": Key(
            str,
            "",
            "engine options for every training, KEY=VALUE separated by commas, as `miragen train "
            '--set` (e.g. "width=32, eval_every=100")',
            _sets,
        ),
        "workers": Key(
            int,
            1,
            "classes trained at once, each in a child process of its own (the classes of a kit "
            "train as one; ≈ 300–600 MB each while it trains)",
            _range(1, 16),
        ),
    },
    "generate": {
        "count": Key(int, 4, "candidates written per request", _range(1, 64)),
        "oversample": Key(
            int,
            4,
            "draw this many times more candidates than asked, for the gate to choose from",
            _range(1, 64),
        ),
        "gate": Key(bool, True, "drop silent, duplicate and copied candidates"),
        "copy_factor": Key(
            float,
            0.5,
            "a candidate nearer to a training sample than this × the corpus's median "
            "nearest-neighbour distance is a copy",
            _range(0, 10),
        ),
        "duplicate_factor": Key(
            float,
            0.25,
            "candidates nearer to each other than this × the same distance are duplicates",
            _range(0, 10),
        ),
    },
    "deliver": {
        "route": Key(str, "disk", "where generated sounds go", choices=("sysex", "disk", "both")),
        "transport": Key(
            str,
            "sim",
            "SysEx transport: sim, midi:<port name part>, serial:<device or URL>, "
            "raw:/dev/snd/midiCxDy",
            _transport,
        ),
        "template": Key(
            str,
            "",
            "disk image made on a real Mirage, used as the template for disk delivery "
            "(empty: the synthetic, non-booting template)",
        ),
        "sound": Key(
            str, "lower1", "sound of the disk image that receives deliveries", choices=SOUNDS
        ),
        "half": Key(str, "lower", "memory half for SysEx delivery", choices=("lower", "upper")),
        "wavesample": Key(int, 1, "wavesample number 1..8 that receives a delivery", _range(1, 8)),
        "baud": Key(int, 31250, "serial speed (MIDI is 31,250)", _range(300, 4_000_000)),
        "chunk_size": Key(int, 256, "bytes written per chunk when pacing a dump", _range(1, 65536)),
        "chunk_gap_ms": Key(
            float, 0.0, "pause after each chunk (0: none beyond the wire speed)", _range(0, 10000)
        ),
        "tries": Key(
            int, 3, "attempts per dump (NAK or timeout → retry with backoff)", _range(1, 20)
        ),
        "ack_margin_s": Key(
            float, 2.0, "extra seconds beyond the wire time to wait for ACK/NAK", _range(0.1, 600)
        ),
        "verify": Key(bool, False, "read each delivered wavesample back and compare"),
        "cycle_pages": Key(
            int,
            8,
            "cycle mode, SysEx: a generated single cycle (one 256-byte page) is repeated to this "
            "many pages (disk: to the template wavesample's page range)",
            _range(1, 255),
        ),
    },
    "midi": {
        "input": Key(
            str,
            "",
            "where triggers arrive: midi:<port name part>, serial:<device or URL>, "
            "raw:/dev/snd/midiCxDy (empty: no MIDI input)",
            _midi_input,
        ),
        "max_message_bytes": Key(
            int,
            4096,
            "longest SysEx accepted as a trigger; longer input is dropped",
            _range(16, 1 << 20),
        ),
    },
    "daemon": {
        "rescan_s": Key(
            float, 60.0, "full rescan of the inbox (catches missed events)", _range(1, 86400)
        ),
        "settle_s": Key(
            float,
            1.0,
            "a dropped file must keep its size and mtime this long before ingest",
            _range(0, 3600),
        ),
        "max_file_mb": Key(int, 64, "files larger than this are rejected", _range(1, 4096)),
        "watchdog_s": Key(
            float, 30.0, "systemd watchdog interval expected (WatchdogSec)", _range(1, 3600)
        ),
        "polling": Key(bool, False, "use the polling observer (network shares)"),
        "warm_s": Key(
            float,
            600.0,
            "keep one child process with torch imported ready for this long after the daemon "
            "starts and after each training, generation or sorting (≈ 290 MB while it waits; "
            "saves a request the 3–15 s import); 0: every job starts its own",
            _range(0, 86400),
        ),
        "unsorted_min": Key(
            int,
            16,
            "sounds dropped without a class (top of inbox/) are sorted into classes auto-1, "
            "auto-2, … (their one-shots into auto-hits-1, … when train.mode is cycle) by k-means "
            "once this many are waiting",
            _range(3, 100000),
        ),
        # 160: the largest mixed class measured to pass the judge in 300 s (docs/wavegan.md,
        # "Stop 43: sorting a big folder"); `miragen cluster --max-class` takes this key's
        # default and values
        "sort_max_class": Key(
            int,
            160,
            "a class the sorting finds with more sounds than this is split again on its own "
            "sounds (k-means, best silhouette, no part under 16 sounds; parts joined again "
            "while two fit); 0: never",
            _zero_or(_range(16, 100000)),
        ),
    },
    "logging": {
        "level": Key(str, "INFO", "log level", choices=("DEBUG", "INFO", "WARNING", "ERROR")),
    },
    "web": {
        "listen": Key(
            str,
            "127.0.0.1:8808",
            "address:port of `miragen web`; anything but loopback asks every client for the "
            "token (`miragen web token`)",
            _listen,
        ),
        "token_file": Key(
            str, "", "file holding the web token (empty: web-token in the state folder)"
        ),
        "max_upload_files": Key(
            int,
            64,
            "sound files one upload may carry (each at most daemon.max_file_mb)",
            _range(1, 1000),
        ),
    },
}

# the keyboard presets of miragen.app.keyboard (PRESETS), named here for the request schema
KEYBOARD_PRESETS = ("organ", "pad", "pluck", "drum")

TRIGGER_SCHEMA: dict[str, Key] = {
    "message": Key(
        str,
        "note_on",
        "MIDI message that fires",
        choices=("note_on", "program_change", "control_change", "sysex"),
    ),
    "channel": Key(int, 0, "MIDI channel 1..16 (0: any)", _range(0, 16)),
    "note": Key(int, -1, "note number for note_on (-1: any)", _range(-1, 127)),
    "program": Key(int, -1, "program number for program_change (-1: any)", _range(-1, 127)),
    "control": Key(int, -1, "controller number for control_change (-1: any)", _range(-1, 127)),
    "value": Key(int, -1, "controller value for control_change (-1: any)", _range(-1, 127)),
    "pattern": Key(
        str, "F0 7D * F7", "hex bytes of a SysEx message, * matches one byte", _hex_pattern
    ),
    "class": Key(str, "", "class to generate from (empty: the first class)"),
    "count": Key(int, 1, "candidates to make", _range(1, 64)),
    "half": Key(str, "lower", "memory half", choices=("lower", "upper")),
    "wavesample": Key(int, 1, "wavesample 1..8", _range(1, 8)),
    "route": Key(
        str,
        "",
        "sysex, disk or both (empty: deliver.route); none: make the candidates, deliver nothing",
        choices=("", "sysex", "disk", "both", "none"),
    ),
    "kit": Key(
        bool,
        False,
        "one new sound of each class that has a model, to wavesample, wavesample + 1, … "
        "(one request per class, named <name>-<class>)",
    ),
    "keyboard": Key(
        str,
        "",
        "deliver a whole keyboard across the half with this preset: the candidates (count, "
        "at most 8), the best one at `octaves` octaves, or with kit one sound of each class",
        choices=("",) + KEYBOARD_PRESETS,
    ),
    "octaves": Key(int, 0, "with keyboard: the best candidate at this many octaves", _range(0, 8)),
}
# the keys of a [[trigger]] table that make its request (the rest say which message fires)
TRIGGER_REQUEST_KEYS = (
    "class",
    "count",
    "half",
    "wavesample",
    "route",
    "kit",
    "keyboard",
    "octaves",
)


# A TOML value's type in words, with its article: "must be an integer (got a string '7')".
_TYPE_WORDS = {
    bool: "a boolean (true or false)",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "an array",
    dict: "a table",
}
_GOT_WORDS = {
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "an array",
    dict: "a table",
}


def _type_words(t: type, table: dict[type, str]) -> str:
    for known, words in table.items():
        if t is known:
            return words
    for known, words in table.items():  # datetime and friends: TOML has them, the schema does not
        if issubclass(t, known):
            return words
    name = t.__name__.replace("_", " ")
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = value.isoformat() if hasattr(value, "isoformat") else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_value(dotted: str, spec: Key, value: Any) -> str | None:
    want = spec.type
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if want is int and isinstance(value, bool) or not isinstance(value, want):
        wants = (want,) if isinstance(want, type) else tuple(want)
        tname = " or ".join(_type_words(t, _TYPE_WORDS) for t in wants)
        got = _type_words(type(value), _GOT_WORDS)
        return f"{dotted}: must be {tname} (got {got}: {_shown(value)})"
    if spec.choices is not None and value not in spec.choices:
        return (
            f"{dotted}: must be one of {', '.join(repr(c) for c in spec.choices)} (got {value!r})"
        )
    if spec.check is not None:
        reason = spec.check(value)
        if reason:
            return f"{dotted}: {reason}"
    return None


def _did_you_mean(word: str, known: Any, section: str | None = None) -> str:
    """' (did you mean 'rate'?)' for a mistyped name; ' (it belongs in [deliver])' for a known
    key in the wrong section; '' otherwise."""
    if len(word) > 64:  # a name that long is no typo, and comparing it costs time
        return ""
    close = difflib.get_close_matches(word, [str(k) for k in known], n=1, cutoff=0.6)
    if close:
        return f" (did you mean '{close[0]}'?)"
    if section is not None:
        owners = [s for s, keys in SCHEMA.items() if s != section and word in keys]
        if owners:
            return f" (it belongs in [{owners[0]}])"
    return ""


def key_range(section: str, key: str) -> tuple[float | None, float | None]:
    """The (low, high) bounds the schema checks for ``section.key`` (``trigger`` for a trigger
    key); the command line uses them so that both accept the same values."""
    spec = TRIGGER_SCHEMA[key] if section == "trigger" else SCHEMA[section][key]
    return getattr(spec.check, "lo", None), getattr(spec.check, "hi", None)


def defaults() -> dict[str, Any]:
    """The effective configuration when no file is given."""
    cfg: dict[str, Any] = {
        s: {k: copy.deepcopy(v.default) for k, v in keys.items()} for s, keys in SCHEMA.items()
    }
    cfg["trigger"] = []
    return cfg


def validate(data: dict[str, Any], source: str = "config") -> dict[str, Any]:
    """Merge ``data`` over the defaults; raise ConfigError listing every problem."""
    problems: list[str] = []
    cfg = defaults()
    for section, body in data.items():
        if section == "trigger":
            if not isinstance(body, list) or not all(isinstance(t, dict) for t in body):
                problems.append("trigger: must be an array of tables ([[trigger]])")
                continue
            for i, table in enumerate(body):
                trig = {k: copy.deepcopy(v.default) for k, v in TRIGGER_SCHEMA.items()}
                for key, value in table.items():
                    dotted = f"trigger[{i}].{key}"
                    spec = TRIGGER_SCHEMA.get(key)
                    if spec is None:
                        hint = _did_you_mean(key, TRIGGER_SCHEMA)
                        problems.append(f"{dotted}: unknown key{hint}")
                        continue
                    reason = _check_value(dotted, spec, value)
                    if reason:
                        problems.append(reason)
                    else:
                        trig[key] = float(value) if spec.type is float else value
                cfg["trigger"].append(trig)
            continue
        keys = SCHEMA.get(section)
        if keys is None:
            if isinstance(body, dict):
                hint = _did_you_mean(section, [*SCHEMA, "trigger"])
                problems.append(f"{section}: unknown section{hint}")
            else:  # a key written above every [section]: say where it may belong
                owners = [s for s, ks in SCHEMA.items() if section in ks]
                hint = (
                    f" (put it under [{owners[0]}])"
                    if len(owners) == 1
                    else _did_you_mean(section, SCHEMA)
                )
                problems.append(f"{section}: unknown key outside every [section]{hint}")
            continue
        if not isinstance(body, dict):
            problems.append(f"{section}: must be a table ([{section}])")
            continue
        for key, value in body.items():
            dotted = f"{section}.{key}"
            spec = keys.get(key)
            if spec is None:
                problems.append(f"{dotted}: unknown key{_did_you_mean(key, keys, section)}")
                continue
            reason = _check_value(dotted, spec, value)
            if reason:
                problems.append(reason)
            else:
                cfg[section][key] = float(value) if spec.type is float else value
    if problems:
        raise ConfigError(problems, source)
    return cfg


def parse_text(text: str, source: str = "config") -> dict[str, Any]:
    text = text.removeprefix("\ufeff")  # a byte order mark: not TOML, but harmless
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"not valid TOML: {exc}"], source) from None
    except RecursionError:
        raise ConfigError(["not valid TOML: arrays or tables nested too deeply"], source) from None
    return validate(data, source)


def load(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """Load the effective configuration.

    ``path`` given: that file. Otherwise ``$MIRAGEN_CONFIG``, then ``/etc/miragen/miragen.toml``
    when present, else the embedded default.
    """
    if path is None:
        env = os.environ.get(ENV_CONFIG)
        if env:
            path = env
        else:
            for p in DEFAULT_CONFIG_PATHS:
                if Path(p).is_file():
                    path = p
                    break
    if path is None:
        return parse_text(default_text(), "embedded default")
    p = Path(path)
    if str(path) == "":
        raise ConfigError(["empty configuration file name"], "''")
    try:  # regular files only: a FIFO or a device is refused at once instead of hanging
        data = read_regular(p, max_bytes=MAX_CONFIG_BYTES, what="configuration file")
    except InputError as exc:
        raise ConfigError([exc.reason], str(p)) from None
    return parse_text(decode_text(data, str(p)), str(p))


def decode_text(data: bytes, source: str = "config") -> str:
    """UTF-8 text of a configuration file; a leading byte order mark (Windows editors write
    one) is dropped. Anything else that is not UTF-8 is refused on one line naming the byte."""
    bom = data.startswith(b"\xef\xbb\xbf")
    body = data[3:] if bom else data
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        at = exc.start + (3 if bom else 0)
        raise ConfigError([f"not a text file (not UTF-8 at byte {at})"], source) from None


def default_text() -> str:
    """The embedded default configuration file, with comments."""
    return resources.files("miragen").joinpath("data/default.toml").read_text(encoding="utf-8")


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(v)


def render(cfg: dict[str, Any]) -> str:
    """Render a configuration as TOML, one comment line of help per key."""
    lines: list[str] = []
    for section, keys in SCHEMA.items():
        lines.append(f"[{section}]")
        for key, spec in keys.items():
            lines.append(
                f"# {spec.help}"
                + (f" ({' | '.join(map(str, spec.choices))})" if spec.choices else "")
            )
            lines.append(f"{key} = {_toml_value(cfg[section][key])}")
        lines.append("")
    for trig in cfg.get("trigger", []):
        lines.append("[[trigger]]")
        for key in TRIGGER_SCHEMA:
            lines.append(f"{key} = {_toml_value(trig[key])}")
        lines.append("")
    return "\n".join(lines)


def generate_default_text() -> str:
    """Text of ``data/default.toml`` (regenerate with ``python -m miragen.config``)."""
    example = (
        "# Example trigger: note C3 on channel 10 makes one new sound of class 'default'\n"
        "# and delivers it to wavesample 1 of the lower half.\n"
        '# [[trigger]]\n# message = "note_on"\n# channel = 10\n# note = 48\n'
        '# class = "default"\n# count = 1\n# half = "lower"\n# wavesample = 1\n'
    )
    head = "# Miragen configuration (embedded default). Unknown keys are refused.\n\n"
    return head + render(defaults()) + "\n" + example


if __name__ == "__main__":  # pragma: no cover
    sys.stdout.write(generate_default_text())
