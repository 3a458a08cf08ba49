"""Path checks: lexical first, then again after resolving symlinks."""
import os
import re

from .proto import CONFIG, Refused

TASK_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_root = []


def inside(path, base):
    return path == base or path.startswith(base + "/")


def workspace_root():
    if not _root:
        _root.append(os.path.realpath(CONFIG["workspace"]))
    return _root[0]


def check_task_id(task):
    if not isinstance(task, str) or not TASK_RE.match(task):
        raise Refused("invalid_task_id", "task id must match [A-Za-z0-9_-]{1,128}")


def resolve(base, p):
    """`p` inside `base`, lexically and with symlinks resolved (also for the parents of a path
    that does not exist yet: realpath resolves the existing prefix). Call it as the task's uid."""
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
    return os.path.relpath(full, base)
