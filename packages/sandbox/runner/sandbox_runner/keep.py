"""What the host keeps of a task (export) and what retention removes (cleanup)."""
import base64
import os
import stat
import time

from . import identity, procs
from .commands import busy_tasks
from .paths import TASK_RE, check_task_id, workspace_root
from .privs import as_task
from .quota import USAGE

def op_export(req):
    """Regular files of the task directory (sorted, symlinks skipped), with contents up to
    `maxBytes` in total; `truncated` when a file is listed without its content."""
    check_task_id(req["task"])
    if not os.path.lexists(os.path.join(workspace_root(), req["task"])):
        return {"files": [], "truncated": False}
    base, uid = identity.task_dir(req["task"], create=False)
    budget = int(req["maxBytes"])
    files = []
    truncated = False
    with as_task(uid):
        paths = []
        for root, dirs, names in os.walk(base, followlinks=False):
            for n in names:
                paths.append(os.path.join(root, n))
        paths.sort()
        for p in paths:
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            entry = {"path": os.path.relpath(p, base), "size": st.st_size}
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
    return {"files": files, "truncated": truncated}


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
        if not stat.S_ISDIR(st.st_mode):
            try:
                os.unlink(p)
            except OSError:
                pass
        else:
            try:
                _, uid = identity.task_dir(name, create=False)
            except Exception:  # noqa: BLE001 - a broken directory is removed as it is
                uid = st.st_uid
            if uid is not None and identity.in_range(uid):
                procs.kill_uid(uid)
            identity.remove_tree(p, uid)
            identity.remove_tree(identity.home_of(name), uid)
            if uid is not None and not os.path.lexists(p):
                identity.release(name, uid)
            USAGE.forget(name)
        if not os.path.lexists(p):
            removed += 1
    identity.sweep_claims()
    return {"removed": removed}
