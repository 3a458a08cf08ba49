"""Which uid a task is: the owner of /workspace/<task> is the record.

Every container that mounts the volume, and every restart of a runner, reads the same record.
A new task gets a uid from CONFIG's range through a claim, `.research/uids/<uid>`, a symlink to
the task id: symlink() either creates it or fails, atomically, so two runners in two containers
sharing the volume never hand out one uid twice. Claims are created without a lock; they are
only removed under an flock, after checking again that they are stale, so a removal never takes
a claim made a moment ago. `.research/next-uid` is a hint where to look next: uids go round the
range instead of being reused at once, so files a finished task left outside its directory
(/tmp) are not handed to the next task with the same uid any time soon.

A directory owned by another uid (made by an older version, as `sandbox` or root) is adopted:
it gets a uid and everything in it is chowned to it.
"""
import fcntl
import os
import random
import shutil
import stat
import time

from .paths import TASK_RE, check_task_id, workspace_root
from .privs import as_task
from .proto import CONFIG, Refused, log

STATE = ".research"
# A claim younger than this may belong to an allocation in flight (claim, then mkdir, then chown).
CLAIM_GRACE_S = 60
# A directory still owned by the runner this long after its mkdir was abandoned half-way.
CREATE_GRACE_S = 30
HOMES = "/tmp/research-home"
_homes = []


def state_dir():
    return os.path.join(workspace_root(), STATE)


def claims_dir():
    return os.path.join(state_dir(), "uids")


def in_range(uid):
    first = CONFIG["taskUidFirst"]
    return first <= uid < first + CONFIG["taskUidCount"]


def prepare():
    """At start, as the runner: state directories, and claims rebuilt if they were lost."""
    fresh = not os.path.isdir(claims_dir())
    os.makedirs(claims_dir(), 0o700, exist_ok=True)
    if fresh:
        with locked():
            for name in os.listdir(workspace_root()):
                try:
                    st = os.lstat(os.path.join(workspace_root(), name))
                except OSError:
                    continue
                if TASK_RE.match(name) and stat.S_ISDIR(st.st_mode) and in_range(st.st_uid):
                    try:
                        os.symlink(name, os.path.join(claims_dir(), str(st.st_uid)))
                    except FileExistsError:
                        pass
    _homes_root()


class locked:
    """flock on the volume: shared by every container that mounts it (same kernel)."""

    def __enter__(self):
        self.fd = os.open(os.path.join(state_dir(), "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *_exc):
        os.close(self.fd)


def task_dir(task, create=True):
    """(path, uid) of the task's directory, made and handed to a new uid when missing; (None,
    None) when it is missing and `create` is false."""
    check_task_id(task)
    d = os.path.join(workspace_root(), task)
    for _ in range(1000):
        try:
            st = os.lstat(d)
        except FileNotFoundError:
            if not create:
                return None, None
            uid = _claim(task)
            try:
                os.mkdir(d, 0o700)
            except FileExistsError:
                _unclaim_fresh(uid)
                continue
            try:
                os.chown(d, uid, uid)
            except OSError:
                os.rmdir(d)
                _unclaim_fresh(uid)
                raise
            return d, uid
        # A command may have replaced its task directory with a symlink; never follow it.
        if not stat.S_ISDIR(st.st_mode):
            raise Refused("path_outside_workspace", "the task directory is not a directory (replaced by a symlink?)")
        if in_range(st.st_uid):
            if stat.S_IMODE(st.st_mode) != 0o700:
                # The task opened its own directory up (chmod); it is 0700 again before anything runs.
                with as_task(st.st_uid):
                    os.chmod(d, 0o700)
            return d, st.st_uid
        if st.st_uid == CONFIG["runnerUid"] and time.time() - st.st_mtime < CREATE_GRACE_S:
            time.sleep(0.005)  # another runner made it and is about to hand it over
            continue
        return d, _adopt(task, d, st)
    raise Refused("io_error", "the task directory did not become ready")


def _claim(task):
    first, count = CONFIG["taskUidFirst"], CONFIG["taskUidCount"]
    start = _read_hint()
    if start is None:
        start = random.randrange(count)
    for i in range(min(count, 200000)):
        off = (start + i) % count
        try:
            os.symlink(task, os.path.join(claims_dir(), str(first + off)))
        except FileExistsError:
            continue
        _write_hint((off + 1) % count)
        return first + off
    raise Refused("resource_exhausted", "no free task uid in %d..%d" % (first, first + count - 1))


def _unclaim_fresh(uid):
    # Our own claim of a moment ago: nobody else removes a claim younger than CLAIM_GRACE_S.
    try:
        os.unlink(os.path.join(claims_dir(), str(uid)))
    except FileNotFoundError:
        pass


def release(task, uid):
    """The task's directory is gone: its claim goes too (under the lock, checked again)."""
    p = os.path.join(claims_dir(), str(uid))
    with locked():
        try:
            if os.readlink(p) == task and not os.path.lexists(os.path.join(workspace_root(), task)):
                os.unlink(p)
        except OSError:
            pass


def sweep_claims():
    """Removes claims whose task directory is gone (a runner died between claim and mkdir, or
    between removing a directory and its claim). Returns how many."""
    removed = 0
    now = time.time()
    with locked():
        for name in os.listdir(claims_dir()):
            p = os.path.join(claims_dir(), name)
            try:
                target = os.readlink(p)
                if now - os.lstat(p).st_mtime < CLAIM_GRACE_S:
                    continue
                try:
                    owner = os.lstat(os.path.join(workspace_root(), target)).st_uid
                except FileNotFoundError:
                    owner = None
                if owner != int(name):
                    os.unlink(p)
                    removed += 1
            except (OSError, ValueError):
                continue
    return removed


def _read_hint():
    try:
        with open(os.path.join(state_dir(), "next-uid")) as f:
            return int(f.read().strip()) % CONFIG["taskUidCount"]
    except (OSError, ValueError):
        return None


def _write_hint(off):
    tmp = os.path.join(state_dir(), ".next-uid.%d.%d" % (os.getpid(), random.randrange(1 << 30)))
    try:
        with open(tmp, "w") as f:
            f.write(str(off))
        os.replace(tmp, os.path.join(state_dir(), "next-uid"))
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _adopt(task, d, st):
    uid = _claim(task)
    old = st.st_uid
    # Walk as the old owner, who can enter its own 0700 directories; root-owned trees are
    # walked as the runner (old versions made them 0755). lchown itself needs only CHOWN.
    walker = old if old not in (0, CONFIG["runnerUid"]) else CONFIG["runnerUid"]
    failed = 0
    with as_task(walker):
        for root, dirs, files in os.walk(d, topdown=False):
            for n in dirs + files:
                try:
                    os.lchown(os.path.join(root, n), uid, uid)
                except OSError:
                    failed += 1
        os.lchown(d, uid, uid)
    with as_task(uid):
        os.chmod(d, 0o700)
    log("adopted task directory %s (owner %d) as uid %d%s" % (task, old, uid, ", %d entries not" % failed if failed else ""))
    return uid


# --- homes --------------------------------------------------------------------------------------
#
# HOME and TMPDIR of a task's commands: a directory of its own in the container, not in the
# volume, so caches and temporary files neither mix with other tasks' nor show up among the
# task's files. Counted against its disk quota.


def _homes_root():
    if _homes:
        return _homes[0]
    root = HOMES
    try:
        os.mkdir(root, 0o711)
    except FileExistsError:
        pass
    st = os.lstat(root)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != CONFIG["runnerUid"]:
        # Someone else made it first (a command, before a runner restart): use a fresh one.
        import tempfile

        root = tempfile.mkdtemp(prefix="research-home-", dir="/tmp")
    os.chmod(root, 0o711)
    _homes.append(root)
    return root


def task_home(task, uid):
    h = os.path.join(_homes_root(), task)
    try:
        st = os.lstat(h)
        if stat.S_ISDIR(st.st_mode) and st.st_uid == uid:
            return h
        _remove_as(h, st.st_uid)
    except FileNotFoundError:
        pass
    os.mkdir(h, 0o700)
    os.chown(h, uid, uid)
    return h


def command_env(home):
    """The environment a command of the task whose home is `home` starts with."""
    env = dict(os.environ)
    env.update({"HOME": home, "TMPDIR": home})
    for k in ("USER", "LOGNAME", "MAIL", "SUDO_USER"):
        env.pop(k, None)
    return env


def home_of(task):
    return os.path.join(_homes_root(), task)


def remove_tree(path, uid):
    """Removes a task's tree: its contents as the task, the entry itself as the runner."""
    if not os.path.lexists(path):
        return
    if uid is not None and in_range(uid):
        with as_task(uid):
            shutil.rmtree(path, onerror=_force_remove)
    if os.path.lexists(path):
        try:
            os.rmdir(path)
        except OSError:
            pass


def _remove_as(path, uid):
    remove_tree(path, uid)


def _force_remove(func, path, _exc):
    # A command may have made its files read-only; the owner can always chmod them back.
    try:
        os.chmod(os.path.dirname(path), 0o700)
        if not os.path.islink(path):
            os.chmod(path, 0o700)
        func(path)
    except OSError:
        pass
