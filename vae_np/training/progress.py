"""Training progress on stderr for ``vae-np train``: the ``callback`` that :func:`vae_np.fit`
calls after every step."""
from __future__ import annotations

import sys
import time


class Progress:
    """Training progress on stderr: a '\\r' line at most twice a second on a terminal, else a
    plain line every tenth of the epoch (at most one a second, so short epochs print none)."""

    def __init__(self, epoch, epochs, stream=None, quiet=False, interval=0.5):
        self.epoch, self.epochs, self.quiet, self.interval = epoch, epochs, quiet, interval
        self.stream = sys.stderr if stream is None else stream
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.last, self.width = time.perf_counter(), 0

    def __call__(self, event):
        if self.quiet or event["kind"] != "step":
            return
        step, steps, seconds = event["step"], event["steps"], event["seconds"]
        now = time.perf_counter()
        if self.tty and now - self.last < self.interval and step < steps:
            return
        if not self.tty and (10 * step // steps == 10 * (step - 1) // steps or step == steps
                             or now - self.last < 2 * self.interval):
            return   # a line per tenth of the epoch, but never more than one a second
        line = (f"epoch {self.epoch}/{self.epochs}  step {step}/{steps}  loss {event['loss']:.2f}"
                f"  {event['examples'] / max(seconds, 1e-9):.0f} examples/s"
                f"  ETA {seconds / step * (steps - step):.0f} s")
        self.last = now
        if self.tty:
            self.stream.write("\r" + line.ljust(self.width))
            self.width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self):
        """Clear the terminal line, so that the epoch's summary line starts clean."""
        if self.tty and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
