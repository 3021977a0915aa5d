"""The warm child process (``daemon.warm_s``): started ahead, taken by a job, let go unused."""

from __future__ import annotations

import time

from miragen.service.child import WarmChild


def _gone(proc, timeout: float = 10.0) -> bool:
    t = time.monotonic()
    while proc.poll() is None and time.monotonic() - t < timeout:
        time.sleep(0.05)
    return proc.poll() is not None


def test_take_hands_over_a_waiting_child_and_starts_the_next():
    warm = WarmChild(60.0)
    try:
        warm.refill()
        first = warm.pid()
        assert first is not None
        proc = warm.take()
        assert proc is not None and proc.pid == first and proc.poll() is None
        assert warm.pid() not in (None, first)  # the next one is on its way
        proc.stdin.close()  # an empty task line: a warm child exits quietly
        assert _gone(proc, 60.0) and proc.returncode == 0
        proc.stdout.close()
    finally:
        warm.close()
    assert warm.pid() is None
    warm.refill()  # closed: nothing starts again
    assert warm.pid() is None


def test_an_unused_child_is_let_go_after_linger_and_a_dead_one_is_not_handed_over():
    warm = WarmChild(0.3)
    try:
        warm.refill()
        waiting = warm._proc
        warm.tick()
        assert warm.pid() == waiting.pid  # not yet
        time.sleep(0.4)
        warm.tick()
        assert warm.pid() is None and _gone(waiting)
        warm.refill()
        dead = warm._proc
        dead.kill()
        dead.wait()
        fresh = warm.take()  # the dead one is reaped, not handed over; a new one waits
        assert fresh is None and warm.pid() not in (None, dead.pid)
    finally:
        warm.close()


def test_zero_means_no_warm_child():
    warm = WarmChild(0.0)
    warm.refill()
    assert warm.pid() is None and warm.take() is None
