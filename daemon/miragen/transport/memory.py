"""Read and write a Mirage's memory over any transport: absolute-address data and program dumps.

One :class:`MemoryLink` holds a transport, the tries, the waits and what happened so far
(:class:`TransferStats`); every wait has a timeout, and a failure after the tries raises
:class:`TransferFailed` naming the chunk or block and why (a dropped link raises
:class:`~.base.LinkLost`).

- :meth:`MemoryLink.write_chunk`: a 0x0C dump (paced), then ACK or NAK (retries with backoff),
  then, with ``verify``, the same bytes read back by 0x0B and compared (sent again if not).
- :meth:`MemoryLink.read_chunk`: 0x0B, the 0x0C reply checked (address, length, checksum);
  the host answers ACK, or NAK and asks again, as for a wavesample read-back.
- :meth:`MemoryLink.read_block`: 0x03/0x13, the 0x05/0x15 reply. A program dump carries no
  checksum, so a block counts only when two replies in a row agree (``agree``).
- :meth:`MemoryLink.write_block`: 0x05/0x15 (never answered), then read back and compared.
- :meth:`MemoryLink.write_area` / :meth:`MemoryLink.read_area`: a run of chunks, skipping those
  already done and calling back after each verified one (what resuming needs).

UNCERTAIN (FORMAT.md §4), each isolated here:

* Whether a Mirage answers a 0x0C dump with ACK/NAK: it carries a checksum like 0x06, so
  ``require_ack`` (default) waits for one; ``require_ack=False`` takes the read-back as the
  only proof (it then forces ``verify``).
* After a program dump the operating system may recompute the RAM pointers and segment lists
  (:func:`miragen.mirage.params.os_state_offsets`): the read-back is compared on every other
  byte, and the OS bytes that changed are counted (``os_bytes_changed``).
* The end address of 0x0B/0x0C at the top of a half:
  :func:`miragen.mirage.sysex.absolute_end_nybbles`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

from ..errors import MiragenError
from ..mirage import params as P
from ..mirage import sysex as S
from .base import MIDI_BYTES_PER_S, Transport
from .deliver import wait_for

log = logging.getLogger(__name__)

ABSOLUTE_OVERHEAD = 14  # F0 0F 01 0C, 8 address nybbles, checksum, F7
REQUEST_BYTES = 13  # a 0x0B request
SHORT_BYTES = 5  # ACK, NAK, 0x03/0x13
PROGRAM_DUMP_BYTES = 5 + 2 * P.BLOCK_SIZE  # 1,255
HALVES = ("lower", "upper")


class TransferFailed(MiragenError):
    """A chunk or block that did not get across after its tries; the message says which and
    why."""


@dataclass
class TransferStats:
    chunks_written: int = 0
    chunks_read: int = 0
    blocks_written: int = 0
    blocks_read: int = 0
    naks: int = 0  # NAKs from the Mirage
    timeouts: int = 0  # waits that ended with nothing
    bad_replies: int = 0  # replies that failed their checks (answered NAK, asked again)
    mismatches: int = 0  # read-backs (or repeated block reads) that differed
    retries: int = 0  # sends repeated after a failed try
    os_bytes_changed: int = 0  # parameter-block bytes the Mirage's OS recomputed

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


# --------------------------------------------------------------------------- wire bytes


def write_chunk_bytes(n: int, verify: bool, require_ack: bool = True) -> int:
    """Bytes on the wire (both ways) to write ``n`` bytes in one chunk, with no fault."""
    dump = ABSOLUTE_OVERHEAD + 2 * n
    return dump + (SHORT_BYTES if require_ack else 0) + (read_chunk_bytes(n) if verify else 0)


def read_chunk_bytes(n: int) -> int:
    """Bytes on the wire to read ``n`` bytes in one chunk: request, reply, the host's ACK."""
    return REQUEST_BYTES + ABSOLUTE_OVERHEAD + 2 * n + SHORT_BYTES


def read_block_bytes(agree: int = 2) -> int:
    """Bytes on the wire to read a parameter block ``agree`` times."""
    return agree * (SHORT_BYTES + PROGRAM_DUMP_BYTES)


def write_block_bytes(verify: bool) -> int:
    return PROGRAM_DUMP_BYTES + (read_block_bytes(1) if verify else 0)


def chunks(start: int, length: int, chunk_bytes: int) -> list[tuple[int, int]]:
    """``(address, length)`` of the chunks that cover ``start .. start+length−1``, each at most
    ``chunk_bytes`` and aligned on ``chunk_bytes`` from ``start``."""
    step = max(1, int(chunk_bytes))
    return [(start + o, min(step, length - o)) for o in range(0, length, step)]


# --------------------------------------------------------------------------- the link


class MemoryLink:
    """A transport, the tries and waits, and what happened so far (:attr:`stats`).

    ``progress(wire_bytes)`` is called as bytes go out and come in (sent + received since the
    link was made), so a display can follow the wire.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        tries: int = 3,
        ack_margin_s: float = 2.0,
        backoff_s: float = 0.5,
        require_ack: bool = True,
        settle_s: float = 0.02,
        progress: Callable[[int], None] | None = None,
    ):
        self.t = transport
        self.tries = max(1, int(tries))
        self.ack_margin_s = float(ack_margin_s)
        self.backoff_s = float(backoff_s)
        self.require_ack = bool(require_ack)
        self.settle_s = float(settle_s)
        self.stats = TransferStats()
        self.t0 = time.monotonic()
        self._written0 = transport.bytes_written
        self._read0 = transport.bytes_read
        self._progress = progress
        if progress is not None:
            transport.on_bytes = self._report

    def _report(self) -> None:
        if self._progress is not None:
            self._progress(self.bytes_sent + self.bytes_received)

    def close(self) -> None:
        """Stop reporting progress (the transport stays open)."""
        if self._progress is not None and self.t.on_bytes == self._report:
            self.t.on_bytes = None
        self._progress = None

    # -- figures
    @property
    def bytes_sent(self) -> int:
        return self.t.bytes_written - self._written0

    @property
    def bytes_received(self) -> int:
        return self.t.bytes_read - self._read0

    @property
    def wire_floor_s(self) -> float:
        """The bytes that travelled (both ways, one after the other) at 31,250 baud."""
        return (self.bytes_sent + self.bytes_received) / MIDI_BYTES_PER_S

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.t0

    def figures(self) -> dict[str, float | int]:
        """bytes_sent, bytes_received, wire_floor_s, elapsed_s and their ratio."""
        floor, spent = self.wire_floor_s, self.elapsed_s
        return {
            "bytes_sent": self.bytes_sent,
            "bytes_received": self.bytes_received,
            "wire_floor_s": round(floor, 4),
            "elapsed_s": round(spent, 4),
            "wire_ratio": round(spent / floor, 4) if floor > 0 else None,
        }

    # -- helpers
    def _attempts(self) -> Iterator[int]:
        """1..tries, waiting before every try but the first, twice as long each time."""
        for attempt in range(1, self.tries + 1):
            if attempt > 1:
                self.stats.retries += 1
                time.sleep(self.backoff_s * 2 ** (attempt - 2))
            yield attempt

    def _reply_timeout(self, request: int, reply: int) -> float:
        return self.ack_margin_s + self.t.in_flight_s(request) + self.t.reply_s(reply)

    # -- absolute-address data
    def write_chunk(self, half: str, start: int, data: bytes, *, verify: bool = True) -> None:
        """Bytes ``start..`` of ``half`` ← ``data`` (0x0C), acknowledged and, with ``verify``,
        read back equal; else :class:`TransferFailed` after the tries."""
        data = bytes(data)
        verify = verify or not self.require_ack
        msg = S.encode_absolute_dump(start, data, half == "upper")
        naks = timeouts = differ = 0
        for _attempt in self._attempts():
            self.t.drain()
            self.t.send(msg)
            if self.require_ack:
                answer = wait_for(
                    self.t, ("ack", "nak"), self.ack_margin_s + self.t.in_flight_s(len(msg))
                )
                if answer is None or answer[0] == "nak":
                    naks += answer is not None
                    timeouts += answer is None
                    self.stats.naks += answer is not None
                    self.stats.timeouts += answer is None
                    continue
            if verify and self.read_chunk(half, start, len(data)) != data:
                differ += 1
                self.stats.mismatches += 1
                continue
            self.stats.chunks_written += 1
            return
        raise TransferFailed(
            f"{half} bytes {start:,}..{start + len(data) - 1:,}: not stored after "
            f"{self.tries} tries ({naks} NAK, {timeouts} without ACK within "
            f"{self.ack_margin_s:g} s, {differ} read back different)"
            + ("" if naks or differ else _ACK_HINT)
        )

    def read_chunk(self, half: str, start: int, length: int) -> bytes:
        """Bytes ``start .. start+length−1`` of ``half`` (0x0B → 0x0C, checksum checked)."""
        req = S.encode_absolute_request(start, start + length, half == "upper")
        end = start + length

        def ours(m: S.SysexMessage) -> bool:
            f = m.fields
            return f["half"] == half and f["start"] == start and f["end"] == end

        timeout = self._reply_timeout(len(req), ABSOLUTE_OVERHEAD + 2 * length)
        timeouts = bad = 0
        for _attempt in self._attempts():
            self.t.drain()
            self.t.send(req)
            answer = wait_for(self.t, ("absolute_dump",), timeout, ours)
            if answer is None:
                timeouts += 1
                continue
            if answer[0] == "bad":
                bad += 1
                log.info("read of %s bytes %d..%d: %s", half, start, end - 1, answer[1])
                self.t.send(S.encode_nak())
                continue
            self.t.send(S.encode_ack())
            self.stats.chunks_read += 1
            self.stats.timeouts += timeouts
            self.stats.bad_replies += bad
            return answer[1].data or b""
        self.stats.timeouts += timeouts
        self.stats.bad_replies += bad
        raise TransferFailed(
            f"{half} bytes {start:,}..{end - 1:,}: no good reply to the 0x0B request after "
            f"{self.tries} tries ({timeouts} unanswered within {timeout:.1f} s, {bad} failed "
            "their checks)"
        )

    def write_area(
        self,
        half: str,
        start: int,
        data: bytes,
        chunk_bytes: int,
        *,
        verify: bool = True,
        done: set[int] | frozenset[int] = frozenset(),
        on_chunk: Callable[[int, int], None] | None = None,
    ) -> int:
        """``data`` into ``half`` from ``start`` in chunks; those whose address is in ``done``
        are skipped; ``on_chunk(address, length)`` after each one stored (and verified).
        Returns the chunks written."""
        n = 0
        for addr, length in chunks(start, len(data), chunk_bytes):
            if addr in done:
                continue
            self.write_chunk(half, addr, data[addr - start : addr - start + length], verify=verify)
            n += 1
            if on_chunk is not None:
                on_chunk(addr, length)
        return n

    def read_area(
        self,
        half: str,
        start: int,
        length: int,
        chunk_bytes: int,
        *,
        have: dict[int, bytes] | None = None,
        on_chunk: Callable[[int, bytes], None] | None = None,
    ) -> bytes:
        """Bytes ``start .. start+length−1`` of ``half`` in chunks; chunks already in ``have``
        (address → bytes) are not asked for again; ``on_chunk(address, data)`` after each
        one read."""
        have = dict(have or {})
        for addr, n in chunks(start, length, chunk_bytes):
            if len(have.get(addr, b"")) == n:
                continue
            have[addr] = self.read_chunk(half, addr, n)
            if on_chunk is not None:
                on_chunk(addr, have[addr])
        return b"".join(have[a] for a, _n in chunks(start, length, chunk_bytes))

    # -- parameter blocks
    def read_block(self, half: str, *, agree: int = 2) -> bytes:
        """The 625-byte parameter block of ``half`` (0x03/0x13 → 0x05/0x15). A program dump
        carries no checksum: with ``agree`` = 2 it counts only when two replies in a row are
        equal (at most ``tries`` × ``agree`` requests)."""
        upper = half == "upper"
        req = S.encode_program_request(upper)
        timeout = self._reply_timeout(len(req), PROGRAM_DUMP_BYTES)
        last: bytes | None = None
        timeouts = bad = differ = 0
        for _attempt in range(self.tries * max(1, agree)):
            if timeouts or bad or differ:
                self.stats.retries += 1
            self.t.drain()
            self.t.send(req)
            answer = wait_for(
                self.t, ("program_dump",), timeout, lambda m: m.fields["half"] == half
            )
            if answer is None or answer[0] == "bad":
                timeouts += answer is None
                bad += answer is not None
                last = None
                continue
            block = answer[1].data or b""
            if agree <= 1 or block == last:
                self.stats.blocks_read += 1
                self.stats.timeouts += timeouts
                self.stats.bad_replies += bad
                self.stats.mismatches += differ
                return block
            differ += last is not None
            last = block
        self.stats.timeouts += timeouts
        self.stats.bad_replies += bad
        self.stats.mismatches += differ
        raise TransferFailed(
            f"the {half} parameter block: no {'two equal replies' if agree > 1 else 'good reply'} "
            f"to 0x{req[3]:02X} ({timeouts} unanswered within {timeout:.1f} s, {bad} malformed, "
            f"{differ} differing)"
        )

    def write_block(self, half: str, block: bytes, *, verify: bool = True) -> None:
        """``block`` → the parameter block of ``half`` (0x05/0x15; no answer comes), then read
        back and compared outside the OS-state bytes; sent again when it differs."""
        block = bytes(block)
        msg = S.encode_program_dump(block, half == "upper")
        os_state = P.os_state_offsets()
        where = ""
        for _attempt in self._attempts():
            self.t.drain()
            self.t.send(msg)
            if not verify:
                self.stats.blocks_written += 1
                return
            if self.settle_s > 0:
                time.sleep(self.settle_s)  # the Mirage takes the block in before it answers
            back = self.read_block(half, agree=1)
            diff = [i for i in range(P.BLOCK_SIZE) if back[i] != block[i]]
            ours = [i for i in diff if i not in os_state]
            if not ours:
                self.stats.blocks_written += 1
                self.stats.os_bytes_changed += len(diff)
                return
            self.stats.mismatches += 1
            where = f"byte {ours[0]} ({P.describe_offset(ours[0])}) and {len(ours) - 1} more"
            log.info("the %s parameter block read back differs at %s", half, where)
        raise TransferFailed(
            f"the {half} parameter block read back differs from the one sent after {self.tries} "
            f"tries (at {where}); the Mirage may have refused it"
        )


_ACK_HINT = (
    "; whether a Mirage acknowledges absolute-address dumps (0x0C) is UNCERTAIN (FORMAT.md §4): "
    "if it never does, try --no-ack (the read-back is then the only proof)"
)
