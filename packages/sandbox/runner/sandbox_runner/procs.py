"""Processes by uid. Each task's commands run as the task's uid, so "everything the task left
running" is exactly the processes of that uid: background jobs, daemons that left their process
group with setsid, a fork bomb. Read from /proc/<pid>/status, which every uid may read (the
directory's owner is root for a process that made itself non-dumpable)."""
import os
import signal
import time


def real_uid(pid, live_only=False):
    """The process's real uid; None when it is gone (or, with `live_only`, a zombie)."""
    try:
        with open("/proc/%d/status" % pid, "rb") as f:
            for line in f:
                if live_only and line.startswith(b"State:") and line.split()[1] in (b"Z", b"X"):
                    return None
                if line.startswith(b"Uid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def pids():
    for name in os.listdir("/proc"):
        if name.isdigit():
            yield int(name)


def by_uid(wanted):
    """{uid: [pid, ...]} for the uids in `wanted` that have processes."""
    found = {}
    for pid in pids():
        uid = real_uid(pid, live_only=True)
        if uid in wanted:
            found.setdefault(uid, []).append(pid)
    return found


def kill_uid(uid):
    """SIGKILLs every process of `uid`, sweeping until none is left (a bomb forks while it is
    being killed). Needs no new process or thread, so it works while the pids limit is held.
    Returns how many were killed."""
    me = os.getpid()
    killed = 0
    for sweep in range(50):
        found = 0
        for pid in pids():
            if pid in (1, me) or real_uid(pid, live_only=True) != uid:
                continue
            try:
                os.kill(pid, signal.SIGKILL)
                found += 1
            except (ProcessLookupError, PermissionError):
                continue
        killed += found
        if not found:
            break
        if sweep > 0:
            # A bomb forks while it is killed; the processes of the first pass may just be dying.
            time.sleep(0.005)
    return killed


def kill_group(pgid):
    # Two passes: a process forking at the moment of the first kill is caught by the second.
    for _ in range(2):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.005)
