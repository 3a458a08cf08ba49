"""The file actions: create-file, read-file, list-files. Each runs on a thread of its own as the
task's uid (privs.as_task), so what it creates belongs to the task and what it reads is what
the task could read."""
import os
import stat

from . import identity
from .paths import inside, rel, resolve
from .privs import as_task
from .proto import CONFIG, Refused
from .quota import USAGE


def op_create_file(req):
    base, uid = identity.task_dir(req["task"])
    shown = req["filePath"]
    data = req["content"].encode("utf-8", "replace")
    with as_task(uid):
        full, real = resolve(base, shown)
        if real == base:
            raise Refused("is_directory", "%s is the task directory" % shown)
        parent = os.path.dirname(real)
        try:
            os.makedirs(parent, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise Refused("not_a_directory", "a parent of %s is a file" % shown)
        # The parent may have been swapped for a symlink meanwhile (commands run concurrently).
        if not inside(os.path.realpath(parent), base):
            raise Refused("path_outside_workspace", "%s resolves outside the task directory through a symlink" % shown)
        overwritten = False
        old_bytes = 0
        try:
            st = os.lstat(real)
            if stat.S_ISDIR(st.st_mode):
                raise Refused("is_directory", "%s is a directory" % shown)
            overwritten = True
            old_bytes = st.st_blocks * 512
        except FileNotFoundError:
            pass
        USAGE.check_write(req["task"], uid, old_bytes, len(data), shown)
        try:
            fd = os.open(real, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as e:
            if e.errno == 40:  # ELOOP: a symlink appeared at the final component
                raise Refused("path_outside_workspace", "%s is a symlink" % shown)
            raise
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    USAGE.wrote(req["task"], old_bytes, len(data))
    return {"action": "create-file", "path": rel(base, full), "bytes": len(data), "overwritten": overwritten}


def decode_text(data, truncated):
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        # A cut in the middle of a multi-byte character is not binary.
        if truncated and e.start >= len(data) - 3:
            try:
                return data[: e.start].decode("utf-8")
            except UnicodeDecodeError:
                return None
        return None


def _stat_existing(real, shown):
    """os.stat of a path the task named; when nothing is there, not_found naming the path as the task wrote it."""
    try:
        return os.stat(real)
    except FileNotFoundError:
        raise Refused("not_found", "%s does not exist" % shown)


def op_read_file(req):
    base, uid = identity.task_dir(req["task"])
    shown = req["filePath"]
    with as_task(uid):
        full, real = resolve(base, shown)
        st = _stat_existing(real, shown)
        if stat.S_ISDIR(st.st_mode):
            raise Refused("is_directory", "%s is a directory; use list-files" % shown)
        if not stat.S_ISREG(st.st_mode):
            raise Refused("not_a_file", "%s is not a regular file" % shown)
        cap = CONFIG["maxReadBytes"]
        with open(real, "rb") as f:
            data = f.read(cap + 1)
    truncated = len(data) > cap
    data = data[:cap]
    text = decode_text(data, truncated)
    return {
        "action": "read-file",
        "path": rel(base, full),
        "size": st.st_size,
        "content": "" if text is None else text,
        "binary": text is None,
        "truncated": truncated,
    }


def op_list_files(req):
    base, uid = identity.task_dir(req["task"])
    shown = req.get("path") or "."
    with as_task(uid):
        full, real = resolve(base, shown)
        st = _stat_existing(real, shown)
        root_rel = rel(base, full)
        if not stat.S_ISDIR(st.st_mode):
            entry = {"path": root_rel, "size": st.st_size, "type": "file"}
            return {"action": "list-files", "path": root_rel, "files": [entry], "truncated": False}
        files, truncated = _walk(real, root_rel)
    return {"action": "list-files", "path": root_rel, "files": files, "truncated": truncated}


def _walk(real, root_rel):
    files = []
    state = {"truncated": False}
    max_entries, max_depth = CONFIG["listMaxEntries"], CONFIG["listMaxDepth"]

    def walk(real_dir, rel_dir, depth):
        try:
            entries = sorted(os.scandir(real_dir), key=lambda e: e.name)
        except OSError:
            return
        for e in entries:
            if len(files) >= max_entries:
                state["truncated"] = True
                return
            p = e.name if rel_dir == "." else rel_dir + "/" + e.name
            try:
                if e.is_symlink():
                    files.append({"path": p, "size": e.stat(follow_symlinks=False).st_size, "type": "symlink"})
                elif e.is_dir(follow_symlinks=False):
                    files.append({"path": p, "size": 0, "type": "dir"})
                    if depth + 1 < max_depth:
                        walk(e.path, p, depth + 1)
                    elif any(True for _ in os.scandir(e.path)):
                        state["truncated"] = True
                elif e.is_file(follow_symlinks=False):
                    files.append({"path": p, "size": e.stat(follow_symlinks=False).st_size, "type": "file"})
                else:
                    files.append({"path": p, "size": 0, "type": "other"})
            except OSError:
                continue

    walk(real, root_rel, 0)
    return files, state["truncated"]
