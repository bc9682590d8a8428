"""A progress indicator on stderr for the command line's long steps."""

import itertools
import sys
import threading
import time

# Work shorter than this shows nothing: most fits and every forget are.
DELAY_SECONDS = 2.0
INTERVAL_SECONDS = 0.2
_FRAMES = "|/-\\"


class Progress:
    """Show ``message``, a spinner and the elapsed time while a block runs.

    The indicator appears only once the block has run ``delay`` seconds, only on
    a terminal, and never with ``quiet``; it is erased when the block ends, so
    that the output that follows reads as if it had never been there. How far a
    fit has got is unknown (an optimiser stops when it converges), so it shows
    that work goes on and for how long, not a fraction.

    Parameters
    ----------
    message : str
        What is being done, e.g. ``"fitting SparseGPRegressor on 5000 rows"``.
    quiet : bool, default=False
        Show nothing.
    stream : file-like, default=None
        Where to write; ``sys.stderr`` when None.
    delay : float, default=None
        Seconds before the indicator appears; ``DELAY_SECONDS`` when None.
    interval : float, default=None
        Seconds between redraws; ``INTERVAL_SECONDS`` when None.
    """

    def __init__(
        self,
        message,
        *,
        quiet=False,
        stream=None,
        delay=None,
        interval=None,
    ):
        self.message = message
        self.stream = sys.stderr if stream is None else stream
        self.delay = DELAY_SECONDS if delay is None else delay
        self.interval = INTERVAL_SECONDS if interval is None else interval
        is_terminal = getattr(self.stream, "isatty", lambda: False)()
        self.enabled = is_terminal and not quiet
        self.shown = False
        self._done = threading.Event()
        self._thread = None
        self._width = 0

    def __enter__(self):
        if self.enabled:
            self._start = time.monotonic()
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc_info):
        if self._thread is not None:
            self._done.set()
            self._thread.join()
            if self.shown:
                self._write("\r" + " " * self._width + "\r")
        return False

    def _write(self, text):
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken stream ends the display
            self._done.set()

    def _run(self):
        if self._done.wait(self.delay):
            return
        for frame in itertools.cycle(_FRAMES):
            line = f"{self.message} {frame} {time.monotonic() - self._start:.0f} s"
            self._width = max(self._width, len(line))
            self.shown = True
            self._write("\r" + line.ljust(self._width))
            if self._done.wait(self.interval):
                return
