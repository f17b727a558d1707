"""SIGTERM ends a drill the way Ctrl-C does: the method stops and the rollbacks run.

Chaos Toolkit turns SIGTERM into an ``InterruptExecution`` raised wherever the main thread is. In
the middle of a Python probe (most of a drill is a probe waiting for something), its provider
wrapper reports that as the activity failing, and the method goes on to its next activity: a
``timeout`` or a CI runner stopping a drill would wait out every remaining probe. A
``KeyboardInterrupt`` passes through that wrapper, and the run handles it as Ctrl-C: status
``interrupted``, then the rollbacks. The handler is installed once the run has set up its own
signal handlers (the ``started`` event) and is restored with them when the run ends.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType
from typing import Any

from chaoslib.run import RunEventHandler


class SigtermAsCtrlC(RunEventHandler):  # type: ignore[misc]
    def __init__(self) -> None:
        self.signalled = False

    def started(self, experiment: Any, journal: Any) -> None:
        signal.signal(signal.SIGTERM, self._interrupt)

    def _interrupt(self, signum: int, frame: FrameType | None) -> None:
        if self.signalled:
            print("[drill] still rolling back; SIGKILL stops without the rollbacks", file=sys.stderr, flush=True)
            return
        self.signalled = True
        print("[drill] SIGTERM: stopping the drill and running its rollbacks", file=sys.stderr, flush=True)
        raise KeyboardInterrupt
