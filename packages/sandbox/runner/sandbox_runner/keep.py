"""What the host keeps of a task (export) and what retention removes (cleanup)."""
import base64
import os
import shutil
import stat
import time

from .commands import _procs_lock, _running
from .paths import TASK_RE, task_dir, workspace_root


def op_export(req):
    base = task_dir(req["task"], create=False) if os.path.lexists(os.path.join(workspace_root(), req["task"])) else None
    files = []
    truncated = False
    if base is None:
        return {"files": files, "truncated": False}
    budget = int(req["maxBytes"])
    paths = []
    for root, dirs, names in os.walk(base, followlinks=False):
        dirs.sort()
        for n in sorted(names):
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


def _force_remove(func, path, _exc):
    # A command may have made its files read-only; the owner can always chmod them back.
    try:
        os.chmod(os.path.dirname(path), 0o700)
        os.chmod(path, 0o700)
        func(path)
    except OSError:
        pass


def op_cleanup(req):
    root = workspace_root()
    limit = time.time() - float(req["maxAgeMs"]) / 1000.0
    with _procs_lock:
        busy = {t for (t, _) in _running.values()}
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
        try:
            if stat.S_ISDIR(st.st_mode):
                shutil.rmtree(p, onerror=_force_remove)
            else:
                os.unlink(p)
        except OSError:
            pass
        if not os.path.lexists(p):
            removed += 1
    return {"removed": removed}
