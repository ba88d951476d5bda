"""SignalStop: the first signal sets the event and runs the callbacks, interrupts only inside
interruptible sections, a second one exits at once; handlers and the relay thread are put back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest

from nvinformers.signals import Interrupted, SignalStop, exit_code_for

WAIT = 10.0


def relay_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "nvinformers-signals"]


def test_exit_codes_follow_the_shell_convention() -> None:
    assert exit_code_for(signal.SIGINT) == 130
    assert exit_code_for(signal.SIGTERM) == 143


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_the_first_signal_sets_the_event_and_runs_the_callbacks(signum: int) -> None:
    ran = threading.Event()
    with SignalStop() as stop:
        stop.on_stop(ran.set)
        assert (stop.stopped, stop.exit_code) == (False, None)
        os.kill(os.getpid(), signum)  # outside interruptible(): nothing is raised
        assert stop.event.wait(WAIT)
        assert ran.wait(WAIT)
        assert (stop.stopped, stop.signum, stop.exit_code) == (True, signum, 128 + signum)
        late = threading.Event()
        stop.on_stop(late.set)  # registered after the signal: runs at once
        assert late.is_set()


def test_a_signal_inside_an_interruptible_section_raises_there() -> None:
    with SignalStop() as stop:

        def signal_inside() -> None:
            with stop.interruptible():
                os.kill(os.getpid(), signal.SIGTERM)
                stop.event.wait(WAIT)  # the handler raises before this can return

        with pytest.raises(Interrupted) as info:
            signal_inside()
        assert info.value.exit_code == 143
        with pytest.raises(Interrupted), stop.interruptible():  # entering after a signal
            pass


def test_an_unregistered_callback_does_not_run() -> None:
    ran: list[str] = []
    with SignalStop() as stop:
        remove = stop.on_stop(lambda: ran.append("x"))
        remove()
        remove()  # idempotent
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.event.wait(WAIT)
    assert ran == []


def test_a_failing_callback_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ran = threading.Event()

    def boom() -> None:
        raise RuntimeError("boom")

    with SignalStop() as stop:
        stop.on_stop(boom)
        stop.on_stop(ran.set)
        os.kill(os.getpid(), signal.SIGTERM)
        assert ran.wait(WAIT)
    assert "callback" in caplog.text and "boom" in caplog.text  # logged by the latch


def test_restore_puts_the_handlers_back_and_joins_the_relay_thread() -> None:
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    stop = SignalStop().install()
    assert len(relay_threads()) == 1
    stop.install()  # idempotent
    assert len(relay_threads()) == 1
    stop.restore()
    stop.restore()
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
    assert relay_threads() == []


def test_a_signal_ignored_at_start_stays_ignored() -> None:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a background job of a script
    try:
        with SignalStop():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_off_the_main_thread_it_is_a_plain_stop_event() -> None:
    result: list[SignalStop] = []
    thread = threading.Thread(target=lambda: result.append(SignalStop().install()))
    thread.start()
    thread.join(WAIT)
    (stop,) = result
    assert relay_threads() == []
    stop.event.set()
    assert stop.stopped and stop.exit_code is None
    stop.restore()


def test_a_second_signal_exits_at_once_with_its_code() -> None:
    # A stop that hangs: the first SIGINT is handled, the clean-up never ends, SIGTERM insists.
    code = (
        "import os, signal, time\n"
        "from nvinformers.signals import SignalStop\n"
        "stop = SignalStop().install()\n"
        "os.kill(os.getpid(), signal.SIGINT)\n"
        "stop.event.wait(10)\n"
        "os.kill(os.getpid(), signal.SIGTERM)\n"
        "time.sleep(10)\n"
        "raise SystemExit(0)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, timeout=30, check=False
    )
    assert result.returncode == 143
    assert result.stderr == b""


def test_a_signal_taken_by_another_thread_wakes_a_main_thread_blocked_without_timeout() -> None:
    # The kernel hands a process-wide signal to any thread; when a gRPC or worker thread takes
    # it, Python's handler waits for the main thread's next bytecode, which never comes while it
    # blocks in event.wait() with no timeout (Manager.run, the demo). The wake-up fd relays it.
    code = (
        "import dis, inspect, signal, sys, threading, time\n"
        "from nvinformers.signals import SignalStop\n"
        "stop = SignalStop().install()\n"
        "main = threading.main_thread()\n"
        "wait = threading.Condition.wait\n"
        "# The blocking 'waiter.acquire()' under 'if timeout is None:' (not the first one, which\n"
        "# takes the fresh lock at once).\n"
        "lines, first = inspect.getsourcelines(wait)\n"
        "line = next(first + i for i in range(1, len(lines)) if lines[i].strip() ==\n"
        "            'waiter.acquire()' and lines[i - 1].strip() == 'if timeout is None:')\n"
        "calls, current = set(), None\n"
        "for op in dis.get_instructions(wait):\n"
        "    current = op.starts_line or current\n"
        "    if current == line and op.opname == 'CALL':\n"
        "        calls.add(op.offset)\n"
        "assert calls, 'Condition.wait has changed: find its blocking acquire again'\n"
        "def parked():\n"
        "    # Main's frame at that CALL and its kernel thread asleep; how often it has woken.\n"
        "    frame = sys._current_frames()[main.ident]\n"
        "    task = f'/proc/self/task/{main.native_id}/'\n"
        "    state = open(task + 'stat').read().rsplit(')', 1)[1].split()[0]\n"
        "    wakes = open(task + 'status').read().split('voluntary_ctxt_switches:')[1].split()[0]\n"
        "    at_call = frame.f_code is wait.__code__ and frame.f_lasti in calls\n"
        "    return wakes if at_call and state == 'S' else None\n"
        "def worker():\n"
        "    # At the CALL, main may still wait for the GIL, not yet be in the lock. This thread\n"
        "    # sleeps between samples (the GIL is free): main asleep there twice without waking\n"
        "    # in between is parked in the C lock, where no bytecode runs until it is released.\n"
        "    before = None\n"
        "    while (now := parked()) is None or now != before:\n"
        "        before = now\n"
        "        time.sleep(0.02)\n"
        "    signal.pthread_kill(threading.get_ident(), signal.SIGTERM)  # to this thread\n"
        "threading.Thread(target=worker).start()\n"
        "stop.event.wait()\n"
        "stop.restore()\n"
        "sys.exit(stop.exit_code)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, timeout=30, check=False
    )
    assert (result.returncode, result.stderr) == (143, b"")


def test_other_handled_signals_on_the_wake_up_fd_are_not_a_stop() -> None:
    code = (
        "import os, signal, sys, threading\n"
        "from nvinformers.signals import SignalStop\n"
        "hup = threading.Event()\n"
        "signal.signal(signal.SIGHUP, lambda *_: hup.set())\n"
        "stop = SignalStop().install()\n"
        "os.kill(os.getpid(), signal.SIGHUP)\n"
        "assert hup.wait(10)\n"
        "os.kill(os.getpid(), signal.SIGINT)\n"
        "assert stop.event.wait(10)\n"
        "stop.restore()\n"
        "sys.exit(stop.exit_code)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, timeout=30, check=False
    )
    assert (result.returncode, result.stderr) == (130, b"")
