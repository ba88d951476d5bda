"""SIGINT and SIGTERM for nvinformers' programs: one stop request, exit 130 / 143, no traceback.

The ``nvinformers`` command (every subcommand, the demo and ``fake-server``),
``python -m nvinformers.testing`` and the examples turn a stop signal into a request to stop
through :class:`SignalStop`, so that Ctrl-C and SIGTERM behave the same everywhere:

* The first SIGINT or SIGTERM records the signal, sets :attr:`SignalStop.event` and runs the
  callbacks registered with :meth:`SignalStop.on_stop` (for example ``watch.stop``). Code that
  waits on the event (``stop.wait()``, ``factory.wait_for_cache_sync(stop)``) returns and cleans
  up; code that has not reached such a wait checks :attr:`SignalStop.stopped` at its next step.
* Inside :meth:`SignalStop.interruptible` the first signal also raises :class:`Interrupted` on
  the main thread, which unwinds a blocking call (an import, a gRPC call that has not answered)
  through the ``with`` blocks above it. Outside such a section nothing is raised, so code that
  must not be torn half-way (starting a server, joining threads) runs to its end and then sees
  the event.
* A second signal ends the process at once (``os._exit``) with its exit code: the clean stop is
  taking too long, and the user asked twice.

The exit code is the shell's convention, 128 + the signal number: 130 for SIGINT, 143 for
SIGTERM (:func:`exit_code_for`), which a shell also reports for a process the signal killed.
What no module can cover: Python's own start-up before the program's first line runs (the
interpreter and ``site``, some 20-60 ms). A SIGTERM there kills the process (``$?`` is 143 all
the same); a SIGINT there is Python's ``KeyboardInterrupt``. The ``nvinformers`` command installs
its handlers on its first line and imports everything heavy afterwards, to keep that window to
Python's start-up alone.

Thread-safety: Python runs signal handlers on the main thread, so :meth:`SignalStop.install`
does something only there (elsewhere the object still works as a plain stop event).
:meth:`~SignalStop.install`, :meth:`~SignalStop.restore` and :meth:`~SignalStop.interruptible`
belong to the main thread; :attr:`~SignalStop.event`, :attr:`~SignalStop.stopped` and
:meth:`~SignalStop.on_stop` may be used from any thread. While installed, one thread
(``nvinformers-signals``) relays signals to the event and the callbacks; :meth:`restore` joins it.

Example::

    with SignalStop() as stop:
        with stop.interruptible():
            answer = blocking_call()          # Ctrl-C raises Interrupted here
        server.start()                        # never interrupted half-way
        stop.event.wait()                     # returns on the first signal
    sys.exit(stop.exit_code or 0)
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from types import FrameType
from typing import Any, Final, Self

from nvinformers.cancel import Latch

__all__ = ["SignalStop", "Interrupted", "STOP_SIGNALS", "exit_code_for"]

#: The signals that ask a program to stop.
STOP_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)


def exit_code_for(signum: int) -> int:
    """The exit code of a program stopped by ``signum``: 128 + its number (130, 143)."""
    return 128 + int(signum)


class Interrupted(BaseException):
    """A stop signal arrived while the main thread was in :meth:`SignalStop.interruptible`.

    A ``BaseException``, like ``KeyboardInterrupt``, so that ``except Exception`` blocks do not
    swallow it on its way up.

    Attributes:
        signum: the signal's number.
        exit_code: 128 + ``signum``.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = exit_code_for(signum)


class SignalStop:
    """Turns the first SIGINT / SIGTERM into a stop request (see the module docstring).

    The handler itself only records the signal, writes one byte to a pipe and, inside an
    :meth:`interruptible` section, raises. A relay thread (``nvinformers-signals``, started by
    :meth:`install`, joined by :meth:`restore`) reads the byte, sets :attr:`event` and runs the
    callbacks. Setting an event from the handler could deadlock: Python runs the handler on the
    main thread between two bytecodes, possibly while the main thread holds that event's
    internal lock (inside ``event.wait()``).

    Args:
        event: the event to set on a signal; None: a new one.

    Attributes:
        event: set by the first signal (or by anyone else who wants the program to stop).
    """

    def __init__(self, event: threading.Event | None = None) -> None:
        self.event = threading.Event() if event is None else event
        self._callbacks = Latch()  # set by the relay thread (never by the signal handler)
        self._signum: int | None = None  # the first signal; written by the handler only
        # Main thread only:
        self._previous: dict[int, Any] = {}  # handlers to put back
        self._interruptible = 0  # depth of interruptible() sections
        self._pipe: tuple[int, int] | None = None  # (read, write): handler -> relay thread
        self._wakeup_fd_set = False  # the pipe is the process's signal wake-up fd
        self._relay: threading.Thread | None = None

    @property
    def signum(self) -> int | None:
        """The first stop signal received, None while there was none."""
        return self._signum

    @property
    def exit_code(self) -> int | None:
        """128 + the first signal's number, None while no signal arrived."""
        return None if self._signum is None else exit_code_for(self._signum)

    @property
    def stopped(self) -> bool:
        """True once a signal arrived (even before the relay set :attr:`event`) or someone
        else set :attr:`event`."""
        return self._signum is not None or self.event.is_set()

    def install(self) -> Self:
        """Handle SIGINT and SIGTERM from now on (main thread only; elsewhere: no-op).

        A signal whose disposition is "ignore" (``SIG_IGN``, as for the background jobs of a
        non-interactive shell) is left ignored. Starts the relay thread. Idempotent. Does not
        block.

        Returns:
            self.
        """
        if threading.current_thread() is not threading.main_thread() or self._relay is not None:
            return self
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)  # set_wakeup_fd needs it; a full pipe drops the byte
        self._pipe = (read_fd, write_fd)
        # The C-level handler writes the signal's number to the wake-up fd at once, whichever
        # thread the kernel delivered the signal to. The Python-level handler (_handle) only runs
        # when the main thread next executes bytecode, which may be never if it is blocked in
        # event.wait() without a timeout while a gRPC or worker thread received the signal. An
        # event loop that already owns the wake-up fd (asyncio) keeps it: then _handle relays.
        previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        if previous_fd == -1:
            self._wakeup_fd_set = True
        else:
            signal.set_wakeup_fd(previous_fd)
        for signum in STOP_SIGNALS:
            # A signal ignored when the program started stays ignored (a background job of a
            # script, nohup): the same courtesy Python's own SIGINT handling pays.
            if signal.getsignal(signum) is not signal.SIG_IGN:
                self._previous[signum] = signal.signal(signum, self._handle)
        # The wake-up fd carries every signal that has a Python handler: relay only ours.
        handled = frozenset(int(signum) for signum in self._previous)
        self._relay = threading.Thread(
            target=self._relay_signals, args=(read_fd, handled), name="nvinformers-signals",
            daemon=True,
        )  # fmt: skip
        self._relay.start()
        return self

    def restore(self) -> None:
        """Put back the handlers :meth:`install` replaced and join the relay thread.

        Idempotent. Blocks until the relay thread has run the callbacks of a signal that has
        already arrived.
        """
        previous, self._previous = self._previous, {}
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if self._wakeup_fd_set:
            signal.set_wakeup_fd(-1)
            self._wakeup_fd_set = False
        pipe, self._pipe = self._pipe, None
        relay, self._relay = self._relay, None
        if pipe is None or relay is None:
            return
        os.write(pipe[1], b"\0")  # ends the relay
        relay.join()
        os.close(pipe[0])
        os.close(pipe[1])

    def __enter__(self) -> Self:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.restore()

    def on_stop(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Run ``callback`` on the first stop signal (at once if one already arrived).

        Callbacks run on the relay thread, one after the other: they must be short and must not
        block (``watch.stop``, ``event.set``). One that raises is logged (by the latch, on the
        ``nvinformers.cancel`` logger) and the others still run. Thread-safe.

        Returns:
            A function that unregisters ``callback``.
        """
        return self._callbacks.add_callback(callback)

    @contextmanager
    def interruptible(self) -> Iterator[None]:
        """A section of the main thread that a stop signal interrupts with :class:`Interrupted`.

        Use it around code that holds nothing which an exception would leave half-done: imports,
        argument parsing, a blocking call whose ``with`` block closes what it opened.

        Raises:
            Interrupted: on entry if a signal already arrived, or when one arrives inside.
        """
        if self._signum is not None:
            raise Interrupted(self._signum)
        self._interruptible += 1
        try:
            yield
        finally:
            self._interruptible -= 1

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._signum is not None:
            # The second signal: the clean stop is hanging, and the user insists.
            os._exit(exit_code_for(signum))
        self._signum = signum
        pipe = self._pipe
        if pipe is not None:
            with suppress(BlockingIOError):  # a full pipe already holds a byte to relay
                os.write(pipe[1], bytes([signum]))  # no lock here: see the class docstring
        if self._interruptible:
            raise Interrupted(signum)

    def _relay_signals(self, read_fd: int, handled: frozenset[int]) -> None:
        while True:
            data = os.read(read_fd, 1)
            if not data or data == b"\0":
                return
            if data[0] not in handled:  # another handled signal, through the wake-up fd
                continue
            self.event.set()
            self._callbacks.set()
