"""What the host keeps of a task (export), what retention removes (cleanup) and what a deletion
removes (remove-task)."""
import base64
import os
import stat
import time

from . import identity, procs
from .commands import busy_tasks, op_cancel_task
from .paths import TASK_RE, check_task_id, workspace_root
from .privs import as_task
from .proto import CONFIG
from .quota import USAGE
from .shells import POOL

# Regular files looked at in one export, at most: a task with millions of files is cut here.
EXPORT_SCAN_MAX = 1000000


def op_export(req):
    """Regular files of the task directory (sorted, symlinks skipped), with contents up to
    `maxBytes` in total. The list itself is bounded: at most `maxFiles` entries and
    `maxNameBytes` bytes of names; what does not fit is counted in `omitted`. `truncated` is
    true when a file is listed without its content or files are omitted. With `stop`, every
    process of the task is killed first (as cancel-task), so the copy is its final state: the
    worker's last export and its end's cancel in one request."""
    check_task_id(req["task"])
    if req.get("stop"):
        op_cancel_task(req)
    if not os.path.lexists(os.path.join(workspace_root(), req["task"])):
        return {"files": [], "truncated": False, "omitted": 0}
    base, uid = identity.task_dir(req["task"], create=False)
    budget = int(req["maxBytes"])
    max_files = int(req.get("maxFiles") or CONFIG["exportMaxFiles"])
    max_names = int(req.get("maxNameBytes") or CONFIG["exportMaxNameBytes"])
    files = []
    truncated = False
    with as_task(uid):
        paths, cut = _regular_files(base)
        paths.sort()
        names = 0
        kept = 0
        for p in paths:
            name = os.path.relpath(p, base)
            size_of_name = len(name.encode("utf-8", "surrogateescape"))
            if kept >= max_files or names + size_of_name > max_names:
                break
            kept += 1
            names += size_of_name
            try:
                st = os.lstat(p)
            except OSError:
                continue
            entry = {"path": name, "size": st.st_size}
            if st.st_size <= budget:
                try:
                    fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
                    with os.fdopen(fd, "rb") as f:
                        data = f.read(budget + 1)
                    if len(data) <= budget:
                        budget -= len(data)
                        entry["size"] = len(data)
                        entry["content"] = base64.b64encode(data).decode("ascii")
                    else:
                        truncated = True
                except OSError:
                    truncated = True
            else:
                truncated = True
            files.append(entry)
    omitted = len(paths) - kept
    return {"files": files, "truncated": truncated or omitted > 0 or cut, "omitted": omitted}


def _regular_files(base):
    paths = []
    for root, dirs, names in os.walk(base, followlinks=False):
        for n in names:
            p = os.path.join(root, n)
            try:
                if stat.S_ISREG(os.lstat(p).st_mode):
                    paths.append(p)
            except OSError:
                continue
            if len(paths) >= EXPORT_SCAN_MAX:
                return paths, True
    return paths, False


def _remove_task(name, st):
    """Removes one task's directory (`st` is its lstat) and its home here, after killing every
    process of its uid; its uid's claim goes once the directory is gone."""
    p = os.path.join(workspace_root(), name)
    if not stat.S_ISDIR(st.st_mode):
        try:
            os.unlink(p)
        except OSError:
            pass
        return
    try:
        _, uid = identity.task_dir(name, create=False)
    except Exception:  # noqa: BLE001 - a broken directory is removed as it is
        uid = st.st_uid
    if uid is not None and identity.in_range(uid):
        POOL.forget(uid)
        procs.kill_uid(uid)
    identity.remove_tree(p, uid)
    identity.remove_tree(identity.home_of(name), uid)
    if uid is not None and not os.path.lexists(p):
        identity.release(name, uid)
    USAGE.forget(name)


def op_cleanup(req):
    """Deletes task directories (and their homes here) idle longer than maxAgeMs; returns how many."""
    root = workspace_root()
    limit = time.time() - float(req["maxAgeMs"]) / 1000.0
    busy = busy_tasks()
    removed = 0
    for name in sorted(os.listdir(root)):
        if not TASK_RE.match(name) or name in busy:
            continue
        p = os.path.join(root, name)
        try:
            st = os.lstat(p)
        except OSError:
            continue
        if st.st_mtime >= limit:
            continue
        _remove_task(name, st)
        if not os.path.lexists(p):
            removed += 1
    identity.sweep_claims()
    return {"removed": removed}


def op_remove_task(req):
    """Deletes one task's directory and home whatever their age (the task was deleted): its
    commands and what they left running are killed first. `removed` says whether there was one."""
    check_task_id(req["task"])
    name = req["task"]
    p = os.path.join(workspace_root(), name)
    op_cancel_task({"task": name})
    try:
        st = os.lstat(p)
    except OSError:
        return {"removed": False}
    _remove_task(name, st)
    if os.path.lexists(p):
        raise OSError("the directory of task %s could not be removed" % name)
    return {"removed": True}
