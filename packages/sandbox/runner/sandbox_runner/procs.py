"""Processes by uid. Each task's commands run as the task's uid, so "everything the task left
running" is exactly the processes of that uid: background jobs, daemons that left their process
group with setsid, a fork bomb, one that made itself non-dumpable (the files under its /proc
directory then belong to root, but its status stays readable). Read from /proc/<pid>/status,
which every uid may read."""
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


def _uid_among(pid, wanted):
    """The live process's real uid when it is in `wanted`, else None. /proc/<pid> belongs to the
    process's effective uid, or to root when it is not dumpable; a task's processes have no other
    uid than the task's (no capability, no-new-privileges), so the status of a process whose
    directory belongs to any other uid is not read: a stat, not an open, a read and a parse."""
    try:
        owner = os.stat("/proc/%d" % pid).st_uid
    except OSError:
        return None
    if owner != 0 and owner not in wanted:
        return None
    uid = real_uid(pid, live_only=True)
    return uid if uid in wanted else None


def by_uid(wanted):
    """{uid: [pid, ...]} for the uids in `wanted` that have processes."""
    found = {}
    for pid in pids():
        uid = _uid_among(pid, wanted)
        if uid is not None:
            found.setdefault(uid, []).append(pid)
    return found


# How long kill_uid keeps at a uid whose processes keep coming back (a bomb on a busy machine).
KILL_UID_BUDGET_S = 10.0


def _of_uid(uid, me):
    wanted = (uid,)
    return [pid for pid in pids() if pid not in (1, me) and _uid_among(pid, wanted) is not None]


def kill_uid(uid):
    """SIGKILLs every process of `uid`. A fork bomb refills every pid a kill frees, and on a busy
    machine it can outpace kill sweeps, so the uid is frozen first: SIGSTOP to each process found,
    again until a pass finds none not yet stopped (a stopped process forks no more), then SIGKILL
    to all, sweeping until none is left. Needs no new process or thread, so it works while the
    pids limit is held. Returns how many were killed."""
    me = os.getpid()
    deadline = time.monotonic() + KILL_UID_BUDGET_S
    stopped = set()
    while time.monotonic() < deadline:
        fresh = [pid for pid in _of_uid(uid, me) if pid not in stopped]
        if not fresh:
            if not stopped:
                return 0  # none at all: nothing of the uid is left to start another
            break
        for pid in fresh:
            try:
                os.kill(pid, signal.SIGSTOP)
            except (ProcessLookupError, PermissionError):
                pass
            stopped.add(pid)
    killed = 0
    sweep = 0
    while True:
        found = 0
        for pid in _of_uid(uid, me):
            try:
                os.kill(pid, signal.SIGKILL)
                found += 1
            except (ProcessLookupError, PermissionError):
                continue
        killed += found
        if not found or time.monotonic() > deadline:
            break
        if sweep > 0:
            # Killed processes may take a moment to die (and stop being listed as live).
            time.sleep(0.005)
        sweep += 1
    return killed


def kill_group(pgid):
    # Two passes: a process forking at the moment of the first kill is caught by the second.
    for _ in range(2):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.005)
