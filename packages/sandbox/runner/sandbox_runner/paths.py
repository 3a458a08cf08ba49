"""Path checks: lexical first, then again after resolving symlinks."""
import os
import re
import stat

from .proto import CONFIG, Refused

TASK_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def inside(path, base):
    return path == base or path.startswith(base + "/")


_root = []


def workspace_root():
    if not _root:
        _root.append(os.path.realpath(CONFIG["workspace"]))
    return _root[0]


def task_dir(task, create=True):
    if not isinstance(task, str) or not TASK_RE.match(task):
        raise Refused("invalid_task_id", "task id must match [A-Za-z0-9_-]{1,128}")
    d = os.path.join(workspace_root(), task)
    if create:
        try:
            os.mkdir(d, 0o755)
        except FileExistsError:
            pass
    st = os.lstat(d)
    # A command may have replaced its own task directory with a symlink; never follow it.
    if not stat.S_ISDIR(st.st_mode):
        raise Refused("path_outside_workspace", "the task directory is not a directory (replaced by a symlink?)")
    return d


def resolve(base, p):
    """Lexical check first, then the same check after resolving symlinks (also of the parents
    of a path that does not exist yet: realpath resolves the existing prefix)."""
    if not isinstance(p, str) or p == "" or "\0" in p:
        raise Refused("invalid_action", "path must be a non-empty string without NUL bytes")
    full = os.path.normpath(os.path.join(base, p))
    if not inside(full, base):
        raise Refused("path_outside_workspace", "%s is outside the task directory" % p)
    real = os.path.realpath(full)
    if not inside(real, base):
        raise Refused("path_outside_workspace", "%s resolves outside the task directory through a symlink" % p)
    return full, real


def rel(base, full):
    r = os.path.relpath(full, base)
    return "." if r == "." else r
