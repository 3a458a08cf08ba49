"""Per-task disk quota, enforced by the runner (a Docker volume on a plain engine has no
per-directory quota: no project quotas without prjquota on the host's filesystem, no mounts
without CAP_SYS_ADMIN).

- Each command starts with RLIMIT_FSIZE at the task's remaining budget (`ulimit -f`), so no
  single file it writes grows past what is left: the writer gets SIGXFSZ/EFBIG at the line.
- While a task has running commands, or processes left from them, a watcher thread measures
  its usage (blocks of /workspace/<task> and of its home) and SIGKILLs every process of the
  task's uid once it is past the quota; many files written at once overshoot by at most what
  they write between two measurements.
- create-file refuses content that would take the task past its quota.
A command that took the task past its quota ends as the refusal `disk_quota_exceeded`.
"""
import os
import stat
import threading
import time

from . import identity, procs
from .privs import as_task
from .proto import CONFIG, log

MIN_INTERVAL_S = 0.02
# Growth below this is not a command's: a filesystem allocates metadata blocks for earlier
# writes a little later.
GROWTH_SLACK = 64 * 1024
LINGER_SCAN_S = 0.5
ROUND = 4096


def quota():
    return int(CONFIG.get("taskDiskBytes") or 0)


def enabled():
    return quota() > 0


def measure(task, uid):
    """Bytes of disk the task uses: allocated blocks of everything under its directory and its
    home, hard links counted once. Runs as the task, so it sees what the task can see; a
    directory the task made unreadable is made readable to its owner again first."""
    total = 0
    seen = set()
    stack = []
    with as_task(uid):
        for root in (os.path.join(identity.workspace_root(), task), identity.home_of(task)):
            try:
                st = os.lstat(root)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                total += st.st_blocks * 512
                stack.append(root)
        while stack:
            d = stack.pop()
            try:
                it = os.scandir(d)
            except PermissionError:
                try:
                    os.chmod(d, 0o700)
                    it = os.scandir(d)
                except OSError:
                    continue
            except OSError:
                continue
            with it:
                for e in it:
                    try:
                        st = e.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode):
                        key = (st.st_dev, st.st_ino)
                        if key in seen:
                            continue
                        seen.add(key)
                    total += st.st_blocks * 512
                    if stat.S_ISDIR(st.st_mode):
                        stack.append(e.path)
    return total


def volume_used():
    """Bytes in use on the workspace's filesystem (one statvfs), or None."""
    try:
        st = os.statvfs(identity.workspace_root())
    except OSError:
        return None
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def mb(n):
    return "%.1f MB" % (n / 1048576.0)


class Usage:
    """Each task's last measured usage, and the tasks being watched."""

    def __init__(self):
        self.lock = threading.Condition()
        self.known = {}  # task -> bytes at its last measurement, whoever made it
        self.watched = {}  # task -> Watched
        self.exceeded = {}  # task -> monotonic time the watcher last stopped it
        self.thread = False

    def used(self, task, uid):
        """The task's usage at its last measurement (measured now if it never was). It may be a
        moment old: the watcher, not this figure, is what stops a task past its quota."""
        with self.lock:
            if task in self.known:
                return self.known[task]
        return self.measured(task, uid)

    def measured(self, task, uid):
        n = measure(task, uid)
        with self.lock:
            self.known[task] = n
        return n

    def remaining(self, task, uid):
        """Bytes the task may still write (None: no quota)."""
        if not enabled():
            return None
        return max(0, quota() - self.used(task, uid))

    def check_write(self, task, uid, old_bytes, new_bytes, shown):
        """Before create-file replaces `old_bytes` of disk with `new_bytes` of content."""
        if not enabled():
            return
        used = self.used(task, uid)
        after = used - old_bytes + -(-new_bytes // ROUND) * ROUND
        if after > quota():
            from .proto import Refused

            raise Refused(
                "disk_quota_exceeded",
                "writing %s (%d bytes) would take the task to %s, past its disk quota of %s"
                % (shown, new_bytes, mb(after), mb(quota())),
            )

    def wrote(self, task, old_bytes, new_bytes):
        with self.lock:
            if task in self.known:
                self.known[task] += -(-new_bytes // ROUND) * ROUND - old_bytes

    def forget(self, task):
        with self.lock:
            self.known.pop(task, None)
            self.exceeded.pop(task, None)

    # commands ------------------------------------------------------------------------------

    def started(self, task, uid, used):
        """A command of the task started, when the task used `used` bytes."""
        if not enabled():
            return
        with self.lock:
            w = self.watched.get(task)
            if w is None:
                w = self.watched[task] = Watched(uid)
            w.running += 1
            # Most commands are over before the first measurement: a fast writer meets its file
            # size limit, and the end-of-command check, before it.
            w.next_check = max(w.next_check, time.monotonic() + MIN_INTERVAL_S)
            # A task already past its quota (by an overshoot) may still delete, list and read:
            # only growing further stops it.
            w.limit = max(quota(), used or 0) + GROWTH_SLACK
            if not self.thread:
                self.thread = True
                import _thread

                try:
                    _thread.start_new_thread(self._watch, ())
                except RuntimeError:
                    self.thread = False  # no thread to be had (pids limit): RLIMIT_FSIZE still holds
            self.lock.notify_all()

    def finished(self, task, start):
        """After a command: whether the watcher stopped the task for its quota meanwhile."""
        with self.lock:
            w = self.watched.get(task)
            if w is not None:
                w.running -= 1
            return self.exceeded.get(task, -1.0) >= start

    def could_have_passed(self, task, budget, volume_before):
        """Whether a command of `task` given `budget` bytes may have taken it past its quota.
        Cheap: unless the whole volume grew by about that much while it ran (other tasks' writes
        only make this say yes more often), the task's files cannot have, and need no measuring
        now; when the volume changed at all, the task's last measurement is dropped, so the next
        request that needs its usage measures it."""
        after = volume_used()
        if budget is None or volume_before is None or after is None:
            return True
        grown = after - volume_before
        if abs(grown) > GROWTH_SLACK:
            with self.lock:
                self.known.pop(task, None)
        return grown >= budget - GROWTH_SLACK

    def _running(self, task):
        w = self.watched.get(task)
        return w is not None and w.running > 0

    def _watch(self):
        last_scan = 0.0
        while True:
            with self.lock:
                while not self.watched:
                    self.lock.wait()
                now = time.monotonic()
                due = [(t, w) for t, w in self.watched.items() if w.next_check <= now]
            for task, w in due:
                began = time.monotonic()
                try:
                    n = measure(task, w.uid)
                except OSError:
                    n = 0
                with self.lock:
                    self.known[task] = n
                # Measuring a huge tree takes a while: then measure it less often.
                w.next_check = time.monotonic() + max(MIN_INTERVAL_S, 4 * (time.monotonic() - began))
                if n > w.limit:
                    with self.lock:
                        self.exceeded[task] = time.monotonic()
                    killed = procs.kill_uid(w.uid)
                    log("task %s passed its disk quota (%s of %s); killed %d processes" % (task, mb(n), mb(quota()), killed))
            if time.monotonic() - last_scan >= LINGER_SCAN_S:
                last_scan = time.monotonic()
                self._drop_idle()
            with self.lock:
                if self.watched:
                    soonest = min(w.next_check for w in self.watched.values())
                    self.lock.wait(min(LINGER_SCAN_S, max(0.005, soonest - time.monotonic())))

    def _drop_idle(self):
        """A task stays watched while its commands left processes running (a background writer)."""
        from .shells import POOL

        with self.lock:
            idle = {w.uid: t for t, w in self.watched.items() if w.running <= 0}
        if not idle:
            return
        alive = procs.by_uid(set(idle))
        spare = POOL.idle_pids()
        with self.lock:
            for uid, task in idle.items():
                if not [p for p in alive.get(uid, []) if p not in spare]:
                    w = self.watched.get(task)
                    if w is not None and w.running <= 0:
                        del self.watched[task]
                        self.known.pop(task, None)


class Watched:
    def __init__(self, uid):
        self.uid = uid
        self.running = 0
        self.next_check = 0.0
        self.limit = quota() + GROWTH_SLACK


USAGE = Usage()
