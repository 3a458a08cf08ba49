"""Signalling process groups."""
import signal
import os
import time


def kill_group(pgid):
    # Two passes: a process forking at the moment of the first kill is caught by the second.
    for _ in range(2):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.005)
