"""One exception family, with messages a musician can act on."""

from __future__ import annotations


class MiragenError(Exception):
    """Base of every error Miragen raises on purpose.

    The message names the file (or key, or port) and the reason, in plain words.
    """


class ConfigError(MiragenError):
    """A configuration file has unknown keys or bad values."""

    def __init__(self, problems: list[str], source: str = "config"):
        self.problems = list(problems)
        self.source = source
        super().__init__(f"{source}: " + "; ".join(self.problems))


class InputError(MiragenError):
    """An input file cannot be used (empty, truncated, wrong format, too big...)."""

    def __init__(self, path: object, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class FormatError(MiragenError):
    """Bytes that do not follow a Mirage format (disk image, SysEx); names the offset."""

    def __init__(self, reason: str, offset: int | None = None):
        self.reason = reason
        self.offset = offset
        where = f" at byte {offset}" if offset is not None else ""
        super().__init__(f"{reason}{where}")


class EngineError(MiragenError):
    """An engine cannot train or sample (missing backend, bad option, bad model folder, …)."""
