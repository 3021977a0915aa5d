"""Serial MIDI: pyserial at 31,250 baud (a Jetson UART such as ``/dev/ttyTHS1``, a USB-serial
MIDI adapter), or any pyserial URL (``loop://``, ``spy://``, ``rfc2217://``…).

Writes are paced by our own clock against ``baud / 10`` bytes/s, so a pty or ``loop://`` (no
speed limit of their own) never carry bytes faster than the real wire would.
"""

from __future__ import annotations

import logging
import select
import time

from .base import MIDI_BAUD, LinkLost, Transport, TransportError, bytes_per_second

log = logging.getLogger(__name__)


class SerialTransport(Transport):
    """A pyserial port. ``device`` is a path or a pyserial URL."""

    def __init__(
        self,
        device: str,
        *,
        baud: int = MIDI_BAUD,
        pace_baud: int | None = None,
        chunk_size: int = 256,
        chunk_gap_s: float = 0.0,
        **kw: object,
    ):
        """``pace_baud``: the speed the writes are paced at (default: ``baud``)."""
        import serial  # heavy-ish import kept out of `miragen --help`

        super().__init__(
            f"serial:{device}",
            rate=bytes_per_second(pace_baud or baud),
            chunk_size=chunk_size,
            chunk_gap_s=chunk_gap_s,
            **kw,
        )  # type: ignore[arg-type]
        self.device = device
        self.baud = baud
        self._serial_mod = serial
        try:
            self._ser = serial.serial_for_url(
                device,
                baudrate=baud,
                timeout=0,
                write_timeout=10,
                exclusive=None if "://" in device else True,
            )
        except (serial.SerialException, ValueError, OSError) as exc:
            raise TransportError(f"serial port {device}: cannot open ({exc})") from None

    def _write(self, data: bytes) -> None:
        try:
            n = self._ser.write(data)
            if n is not None and n != len(data):
                raise LinkLost(f"{self.name}: wrote {n} of {len(data)} bytes")
        except self._serial_mod.SerialTimeoutException:
            raise LinkLost(f"{self.name}: write timed out (nobody is reading the port?)") from None
        except (self._serial_mod.SerialException, OSError) as exc:
            raise LinkLost(f"{self.name}: link lost while writing ({exc})") from None

    def _read(self, timeout: float) -> bytes:
        # The port's own timeout stays 0: changing it makes pyserial re-program the UART
        # (tcsetattr, custom baud) on every call. Wait with select() where there is a file
        # descriptor, else poll (URL handlers such as loop://).
        try:
            fd = self._ser.fileno() if hasattr(self._ser, "fileno") else None
        except Exception:  # URL handlers without a descriptor raise their own error types
            fd = None
        try:
            if fd is not None:
                ready, _, _ = select.select([fd], [], [], max(0.0, timeout))
                if not ready:
                    return b""
                data = self._ser.read(max(1, self._ser.in_waiting))
                if not data:  # readable but empty: the other end hung up
                    raise LinkLost(f"{self.name}: the other end closed the port")
                return data
            deadline = time.monotonic() + max(0.0, timeout)
            while True:
                waiting = self._ser.in_waiting
                if waiting:
                    return self._ser.read(waiting)
                if time.monotonic() >= deadline:
                    return b""
                time.sleep(min(0.002, max(0.0, deadline - time.monotonic())))
        except (self._serial_mod.SerialException, OSError) as exc:
            raise LinkLost(f"{self.name}: link lost while reading ({exc})") from None

    def _close(self) -> None:
        try:
            self._ser.close()
        except Exception:  # closing a port whose device vanished must not mask the real error
            log.debug("closing %s failed", self.name, exc_info=True)
