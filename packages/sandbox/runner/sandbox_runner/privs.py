"""Identities. The runner starts as root and drops, before any thread starts, to a uid of its
own that holds only KEPT: SETUID and SETGID (commands start as their task's uid; file actions
switch the thread's file-system uid to the task's), CHOWN (a new task directory is handed to its
uid) and KILL (timeouts and cancels signal processes of other uids). Its bounding set is emptied
first, and every command inherits that, so a command holds no capability in any set, whatever
the container was given. The runner is not dumpable: no other uid opens its /proc/<pid>/fd,
environ or cwd.

Python's stdlib has no prctl, capset or setfsuid: they are called through ctypes. setfsuid and
setfsgid act on the calling thread only (glibc does not broadcast them), which is what lets a
thread of the runner act as one task while the others act as other tasks.
"""
import ctypes
import errno
import os
import threading
from contextlib import contextmanager

from .proto import CONFIG

CAP_CHOWN, CAP_KILL, CAP_SETGID, CAP_SETUID, CAP_SETPCAP = 0, 5, 6, 7, 8
KEPT = (CAP_CHOWN, CAP_KILL, CAP_SETGID, CAP_SETUID)
CAP_NAMES = {CAP_CHOWN: "CHOWN", CAP_KILL: "KILL", CAP_SETGID: "SETGID", CAP_SETUID: "SETUID", CAP_SETPCAP: "SETPCAP"}

PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
_CAP_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


_libc = []


def libc():
    if not _libc:
        lib = ctypes.CDLL(None, use_errno=True)
        lib.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
        lib.setfsuid.argtypes = [ctypes.c_uint]
        lib.setfsgid.argtypes = [ctypes.c_uint]
        _libc.append(lib)
    return _libc[0]


def _check(rc, what):
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, "%s: %s" % (what, os.strerror(e)))


def prctl(option, a2=0, a3=0, a4=0, a5=0):
    _check(libc().prctl(option, a2, a3, a4, a5), "prctl(%d)" % option)


def mask_of(caps):
    m = 0
    for c in caps:
        m |= 1 << c
    return m


def capset(caps):
    """Effective = permitted = `caps`, inheritable empty, for the calling thread."""
    m = mask_of(caps)
    header = _CapHeader(_CAP_VERSION_3, 0)
    data = (_CapData * 2)()
    for i in (0, 1):
        word = (m >> (32 * i)) & 0xFFFFFFFF
        data[i].effective = word
        data[i].permitted = word
        data[i].inheritable = 0
    _check(libc().capset(ctypes.byref(header), data), "capset")


def status_caps(path="/proc/self/status"):
    """{'CapInh': int, 'CapPrm': ..., 'CapEff': ..., 'CapBnd': ..., 'CapAmb': ...} of a process."""
    caps = {}
    with open(path) as f:
        for line in f:
            if line.startswith("Cap"):
                k, v = line.split(":", 1)
                caps[k] = int(v.strip(), 16)
    return caps


def _cap_last():
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return 63


def drop_to_runner():
    """Once, on the main thread, before any other thread exists (setresuid is broadcast)."""
    uid = CONFIG["runnerUid"]
    if os.getuid() != 0:
        raise OSError(errno.EPERM, "the runner must start as root to give each task a uid of its own")
    have = status_caps()["CapPrm"]
    missing = [CAP_NAMES[c] for c in KEPT + (CAP_SETPCAP,) if not have & (1 << c)]
    if missing:
        raise OSError(errno.EPERM, "the container lacks the capabilities %s (add them with capAdd)" % ", ".join(missing))
    prctl(PR_SET_KEEPCAPS, 1)
    become(uid)
    capset(KEPT + (CAP_SETPCAP,))
    for c in range(_cap_last() + 1):
        try:
            prctl(PR_CAPBSET_DROP, c)
        except OSError as e:
            if e.errno != errno.EINVAL:
                raise
    capset(KEPT)
    prctl(PR_SET_KEEPCAPS, 0)
    try:
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    except OSError:
        pass  # kernels before 4.3 have no ambient set
    prctl(PR_SET_DUMPABLE, 0)
    caps = status_caps()
    if caps["CapEff"] != mask_of(KEPT) or caps["CapBnd"] != 0 or caps.get("CapAmb", 0) != 0:
        raise OSError(errno.EPERM, "capabilities after the drop are not as intended: %r" % caps)
    return caps


def become(uid):
    """The calling process becomes `uid` (and gid `uid`, no supplementary groups): the runner at
    start, a command's process between fork and exec."""
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)


_current = threading.local()


def _setfs(uid):
    lib = libc()
    lib.setfsgid(uid)
    lib.setfsuid(uid)
    # Both return the previous value and cannot report failure: ask again.
    if lib.setfsuid(uid) != uid or lib.setfsgid(uid) != uid:
        raise OSError(errno.EPERM, "cannot act as uid %d" % uid)


@contextmanager
def as_task(uid):
    """File-system identity of the calling thread = `uid` (and gid `uid`) inside the block, so a
    file action can reach exactly what the task's own commands can, no more: even a path a
    command swaps for a symlink mid-action leads nowhere the task could not go itself. Nests."""
    if uid == 0:
        # fsuid 0 would raise the file-system capabilities, and going back would drop CHOWN.
        raise OSError(errno.EPERM, "file actions never run as root")
    previous = getattr(_current, "uid", None)
    if previous == uid:
        yield
        return
    _setfs(uid)
    _current.uid = uid
    try:
        yield
    finally:
        back = CONFIG["runnerUid"] if previous is None else previous
        _setfs(back)
        _current.uid = previous
