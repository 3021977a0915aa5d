"""Deliver one wavesample to a Mirage over any transport: select, dump, handshake, verify.

1. Select the wavesample with front-panel key presses (MASOS: 0x15 / 0x14 + digit).
2. Send the 0x06 dump paced (chunks, optional gaps, never faster than the wire).
3. Wait for 0x09 (ACK) or 0x0A (NAK) with a timeout of the wire time plus a margin; on NAK or
   timeout, retry with exponential backoff, ``tries`` attempts in all. A lost link ends at once.
4. ``verify``: ask for the wavesample back (0x04) and compare the bytes; a read-back that
   is missing or fails its checksum is asked for again (``tries`` times).

Success is reported only after an ACK (and, with ``verify``, identical bytes read back).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import InputError
from ..mirage import sysex as S
from .base import LinkLost, Transport, TransportError

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


@dataclass
class DeliveryResult:
    ok: bool
    bytes_sent: int  # every byte written, all tries (keys, dumps, requests)
    wire_floor_s: float  # wire time of one dump message at 31,250 baud
    elapsed_s: float
    tries: int
    verified: bool
    error: str | None = None
    naks: int = 0
    timeouts: int = 0
    dump_bytes: int = 0  # length of one 0x06 message
    readback_bytes: int = 0  # wave bytes read back with verify

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["wire_floor_s"] = round(self.wire_floor_s, 4)
        d["elapsed_s"] = round(self.elapsed_s, 4)
        return d


def check_wavesample(data: bytes) -> None:
    """Refuse data a 0x06 dump cannot carry, before any byte is sent."""
    if not data or len(data) % 256:
        raise InputError(
            "wavesample",
            f"{len(data)} bytes; a dump carries whole pages of 256 bytes (1..255 pages)",
        )
    if len(data) > S.MAX_DUMP_PAGES * 256:
        raise InputError(
            "wavesample",
            f"{len(data) // 256} pages; one SysEx dump carries at most {S.MAX_DUMP_PAGES} pages "
            f"({S.MAX_DUMP_PAGES * 256} bytes); shorten it or deliver it on a disk image",
        )
    zero = data.find(b"\x00")
    if zero >= 0:
        raise InputError(
            "wavesample",
            f"byte {zero} is 0x00, which stops the Mirage's sound chip; "
            "wave data must be 1..255 (convert it with `miragen convert`)",
        )


#: The commands of each reply kind whose malformed copies :func:`wait_for` reports as "bad"
#: (so the caller can NAK or ask again) instead of skipping them.
_REPLY_COMMANDS: dict[str, tuple[int, ...]] = {
    "wavesample_dump": (S.CMD_WAVESAMPLE_DUMP,),
    "absolute_dump": (S.CMD_ABSOLUTE_DUMP,),
    "program_dump": (S.CMD_PROGRAM_DUMP, S.CMD_PROGRAM_DUMP | S.UPPER_FLAG),
}


def wait_for(
    transport: Transport,
    kinds: tuple[str, ...],
    timeout: float,
    accept: Callable[[S.SysexMessage], bool] | None = None,
) -> tuple[str, Any] | None:
    """Wait for a Mirage message of one of ``kinds`` (that ``accept`` takes, when given);
    other messages are skipped.

    Returns (kind, decoded message), ("bad", SysexError) for a Mirage message of a wanted
    dump command that fails its checks, or None on timeout.
    """
    bad_cmds = {c for k in kinds for c in _REPLY_COMMANDS.get(k, ())}
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        msg = transport.receive_message(remaining)
        if msg is None:
            return None
        if len(msg) < 5 or msg[0] != 0xF0 or msg[1:3] != b"\x0f\x01":
            log.debug("skipping a message that is not from a Mirage: %s", msg[:8].hex())
            continue
        try:
            m = S.decode(msg)
        except S.SysexError as exc:
            if msg[3] in bad_cmds:
                return ("bad", exc)
            log.info("skipping a malformed message from the Mirage: %s", exc)
            continue
        if m.kind in kinds and (accept is None or accept(m)):
            return (m.kind, m)
        log.debug("skipping %s while waiting for %s", m.kind, "/".join(kinds))


def deliver_wavesample(
    transport: Transport,
    data: bytes,
    *,
    half: str,
    number: int,
    tries: int = 3,
    verify: bool = False,
    chunk_size: int = 256,
    chunk_gap_s: float = 0.0,
    ack_margin_s: float = 2.0,
    progress: Progress | None = None,
    backoff_s: float = 0.5,
    select_settle_s: float = 0.05,
) -> DeliveryResult:
    """Put ``data`` (whole pages, 1..255 of them, no 0x00) into wavesample ``number`` of
    ``half``. Raises InputError for data no dump can carry; every other failure comes back as
    ``DeliveryResult(ok=False, error=...)``."""
    data = bytes(data)
    check_wavesample(data)
    keys = S.encode_keys(S.select_wavesample_keys(half, number))
    dump = S.encode_wavesample_dump(data)
    transport.chunk_size = int(chunk_size)
    transport.chunk_gap_s = float(chunk_gap_s)
    d = _Delivery(transport, half, number, max(1, int(tries)), backoff_s, len(dump))
    # paced sends return when the last byte has left the wire; add what may still travel
    ack_timeout = ack_margin_s + transport.in_flight_s(len(dump))
    try:
        if not d.send_until_ack(keys, dump, ack_timeout, progress, select_settle_s):
            r = d.result
            return d.finish(
                False, f"no ACK after {d.tries} tries ({r.naks} NAK, {r.timeouts} timed out)"
            )
        if not verify:
            return d.finish(True)
        error = d.read_back(data, ack_margin_s + transport.reply_s(len(dump)))
        return d.finish(error is None, error)
    except LinkLost as exc:
        return d.finish(False, f"link lost: {exc}")
    except TransportError as exc:
        return d.finish(False, str(exc))


class _Delivery:
    """One delivery under way: the transport, the tries allowed, and the result so far."""

    def __init__(
        self,
        transport: Transport,
        half: str,
        number: int,
        tries: int,
        backoff_s: float,
        dump_bytes: int,
    ):
        self.transport = transport
        self.half, self.number = half, number
        self.tries = tries
        self.backoff_s = backoff_s
        self.t0 = time.monotonic()
        self.start_written = transport.bytes_written
        floor = S.wire_seconds(dump_bytes)
        self.result = DeliveryResult(False, 0, floor, 0.0, 0, False, dump_bytes=dump_bytes)

    def _back_off(self, attempt: int) -> None:
        """Wait before every try but the first, twice as long each time."""
        if attempt > 1:
            time.sleep(self.backoff_s * 2 ** (attempt - 2))

    def send_until_ack(
        self,
        keys: bytes,
        dump: bytes,
        ack_timeout: float,
        progress: Progress | None,
        select_settle_s: float,
    ) -> bool:
        """Select the wavesample and send the dump until the Mirage ACKs it (True), or every
        try was answered by a NAK or by nothing (False)."""
        t, result = self.transport, self.result
        total = len(keys) + len(dump)
        for attempt in range(1, self.tries + 1):
            result.tries = attempt
            self._back_off(attempt)
            t.drain()
            t.send(keys, progress=progress, done=0, total=total)
            if select_settle_s > 0:
                time.sleep(select_settle_s)
            t.send(dump, progress=progress, done=len(keys), total=total)
            answer = wait_for(t, ("ack", "nak"), ack_timeout)
            if answer is None:
                result.timeouts += 1
                log.info("try %d/%d: no ACK/NAK within %.1f s", attempt, self.tries, ack_timeout)
                continue
            if answer[0] == "nak":
                result.naks += 1
                log.info("try %d/%d: NAK", attempt, self.tries)
                continue
            return True
        return False

    def read_back(self, data: bytes, read_timeout: float) -> str | None:
        """Ask for the wavesample back until a good dump comes; None when it holds ``data``,
        else why not."""
        t = self.transport
        for attempt in range(1, self.tries + 1):
            self._back_off(attempt)
            t.drain()
            t.send(S.encode_wavesample_request())
            answer = wait_for(t, ("wavesample_dump",), read_timeout)
            if answer is None:
                log.info(
                    "read-back %d/%d: no dump within %.1f s", attempt, self.tries, read_timeout
                )
                continue
            if answer[0] == "bad":
                log.info("read-back %d/%d: %s", attempt, self.tries, answer[1])
                t.send(S.encode_nak())
                continue
            t.send(S.encode_ack())
            return self._compare(data, answer[1].data or b"")
        return f"ACK received, but no good read-back after {self.tries} requests"

    def _compare(self, data: bytes, back: bytes) -> str | None:
        """None when the read-back ``back`` holds the delivered ``data``, else how it differs."""
        self.result.readback_bytes = len(back)
        # UNCERTAIN whether a Mirage moves the wavesample's end page to fit a shorter dump:
        # a longer read-back whose first bytes are ours counts as verified (logged).
        if back[: len(data)] == data:
            if len(back) > len(data):
                log.info(
                    "read-back is %d bytes; the %d delivered bytes match", len(back), len(data)
                )
            self.result.verified = True
            return None
        if len(back) < len(data):
            return (
                f"ACK received, but the read-back is {len(back)} bytes, shorter than the "
                f"{len(data)} sent"
            )
        first = next(i for i in range(len(data)) if back[i] != data[i])
        return f"ACK received, but the read-back differs from byte {first} on"

    def finish(self, ok: bool, error: str | None = None) -> DeliveryResult:
        """The result, with the bytes written and the time taken; a failure is logged."""
        result = self.result
        result.ok = ok
        result.error = error
        result.bytes_sent = self.transport.bytes_written - self.start_written
        result.elapsed_s = time.monotonic() - self.t0
        if error:
            log.info(
                "delivery to %s wavesample %d over %s failed: %s",
                self.half,
                self.number,
                self.transport.name,
                error,
            )
        return result
