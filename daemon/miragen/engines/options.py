"""Engine options: one typed, frozen dataclass per engine, and one reader for all of them.

An engine declares its knobs as a frozen dataclass deriving from :class:`EngineOptions`: each
field's type (``bool``, ``int``, ``float`` or ``str``) says how a value is read, and its
metadata may add ``choices`` (the words allowed) or ``at_least`` / ``at_most`` (a range). The
command line's ``--set KEY=VALUE`` (``miragen train``, ``miragen sweep``, ``bench/quality.py``)
gives text; the configuration file and programmatic callers give typed values; both go through
:meth:`EngineOptions.from_mapping`, so ``x=true`` means the same thing everywhere and a bad key or
value is refused by name before anything trains.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, TypeVar

from ..config import set_items, set_pair
from ..errors import EngineError

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")

Opts = TypeVar("Opts", bound="EngineOptions")


class OptionError(EngineError):
    """A ``--set``/option key or value the engine does not accept."""


def parse_sets(items: Iterable[str], flag: str = "--set") -> dict[str, str]:
    """``["width=32", "mbstd=false"]`` → ``{"width": "32", "mbstd": "false"}``: the text of each
    value, typed later by the engine's options class. A key given twice is refused."""
    out: dict[str, str] = {}
    for item in items:
        pair = set_pair(item)
        if pair is None:
            raise OptionError(f"{flag} {item!r}: expected KEY=VALUE")
        if pair[0] in out:
            raise OptionError(f"{flag}: key '{pair[0]}' given twice")
        out[pair[0]] = pair[1]
    return out


def config_sets(text: str, source: str = "train.set") -> dict[str, str]:
    """The configuration's ``train.set`` ("width=32, mbstd=false") as :func:`parse_sets` reads
    the command line's ``--set`` items; an empty text is no option."""
    return parse_sets(set_items(text), flag=source)


def option(default: Any, help: str = "", **rules: Any) -> Any:
    """A field with a help line and optional rules: ``choices`` / ``one_of`` (the values
    allowed), ``at_least`` / ``at_most`` (inclusive bounds), ``above`` / ``below`` (strict)."""
    return dataclasses.field(default=default, metadata={"help": help, **rules})


def _read(kind: type, raw: Any) -> Any:
    """``raw`` (text or a typed value) as ``kind``; ValueError when it is not one."""
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, int) and raw in (0, 1):
            return bool(raw)
        word = str(raw).strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ValueError
    if kind is int:
        if isinstance(raw, bool):
            raise ValueError
        if isinstance(raw, int):
            return raw
        value = float(raw)
        if not value.is_integer():
            raise ValueError
        return int(value)
    if kind is float:
        if isinstance(raw, bool):
            raise ValueError
        return float(raw)
    if raw is None or isinstance(raw, (bool, int, float)):  # a word option given a number
        raise ValueError
    return str(raw).strip()


_KIND_WORDS = {bool: "true or false", int: "a whole number", float: "a number", str: "a word"}


@dataclasses.dataclass(frozen=True)
class EngineOptions:
    """Base of every engine's options class (a frozen dataclass)."""

    engine: ClassVar[str] = "engine"

    # -------------------------------------------------------------------------- reading
    @classmethod
    def kinds(cls) -> dict[str, type]:
        hints = typing.get_type_hints(cls)
        return {f.name: hints[f.name] for f in dataclasses.fields(cls)}

    @classmethod
    def read_values(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        """Type ``values`` (text or typed) by the fields they name; unknown keys and values that
        are not of the field's kind are refused by name. Only the given keys come back."""
        kinds = cls.kinds()
        out: dict[str, Any] = {}
        for key, raw in values.items():
            name = key.replace("-", "_")
            if name not in kinds:
                close = difflib.get_close_matches(name, kinds, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise OptionError(
                    f"{cls.engine}: unknown option '{key}'{hint}; known: {', '.join(sorted(kinds))}"
                )
            try:
                out[name] = _read(kinds[name], raw)
            except (TypeError, ValueError):
                kind = _KIND_WORDS[kinds[name]]
                raise OptionError(
                    f"{cls.engine}: option '{name}' must be {kind} (got {raw!r})"
                ) from None
        return out

    @classmethod
    def from_mapping(cls: type[Opts], values: Mapping[str, Any] | None = None) -> Opts:
        """Defaults ← the given values, typed and checked."""
        opts = cls(**cls.read_values(values or {}))
        opts.check()
        return opts

    def replace(self: Opts, **values: Any) -> Opts:
        opts = dataclasses.replace(self, **type(self).read_values(values))
        opts.check()
        return opts

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    # -------------------------------------------------------------------------- checking
    def problems(self) -> list[str]:
        """What is wrong with these values, one line each (field rules, then :meth:`relations`)."""
        found = []
        for f in dataclasses.fields(self):
            value, rules = getattr(self, f.name), f.metadata
            if "choices" in rules and value not in rules["choices"]:
                found.append(f"{f.name} must be one of {', '.join(map(str, rules['choices']))}")
            if "one_of" in rules and value not in rules["one_of"]:
                found.append(f"{f.name} must be one of {', '.join(map(str, rules['one_of']))}")
            if "at_least" in rules and not value >= rules["at_least"]:
                found.append(f"{f.name} must be ≥ {rules['at_least']}")
            if "at_most" in rules and not value <= rules["at_most"]:
                found.append(f"{f.name} must be ≤ {rules['at_most']}")
            if "above" in rules and not value > rules["above"]:
                found.append(f"{f.name} must be > {rules['above']}")
            if "below" in rules and not value < rules["below"]:
                found.append(f"{f.name} must be < {rules['below']}")
            if found and found[-1].startswith(f.name + " "):
                found[-1] += f" (got {value!r})"
        return found + self.relations()

    def relations(self) -> list[str]:
        """Rules between fields (an engine overrides this)."""
        return []

    def check(self) -> None:
        found = self.problems()
        if found:
            raise OptionError(f"{self.engine}: " + "; ".join(found))
