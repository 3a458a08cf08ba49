#!/usr/bin/env python3
"""In-container runner of @research/sandbox.

One long-lived process per container, started by the worker through a single attached
`docker exec`. It speaks line-delimited JSON: one request per stdin line, one reply per stdout
line, matched by `id`, so concurrent actions of concurrent tasks never mix their outputs.
Each request runs in its own thread. Needs only python3 (stdlib) and a POSIX shell, which is
why it works in any image that has python3 (ours and kortix/suna alike).

Requests:  {"id": N, "op": "<op>", ...}
Replies:   {"id": N, "ok": true, "result": {...}} | {"id": N, "ok": false, "error": {"code", "message"}}
The first line written is {"id": 0, "ready": true, ...}.

stdout belongs to the protocol; diagnostics go to stderr.
"""
import base64
import json
import os
import re
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import threading
import _thread
import time

PROTOCOL = 1
TASK_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
CONFIG = {
    "workspace": "/workspace",
    "maxOutputBytes": 64 * 1024,
    "maxReadBytes": 1024 * 1024,
    "listMaxEntries": 1000,
    "listMaxDepth": 8,
    "warmShells": 2,
}
SHELL = "/bin/bash" if os.access("/bin/bash", os.X_OK) else "/bin/sh"

_out_lock = threading.Lock()
_out = sys.stdout.buffer

# Running commands: request id -> (task id, process group id); and every process group a
# task ever started, so cancel-task also reaches background jobs left by finished commands.
_procs_lock = threading.Lock()
_running = {}
_task_groups = {}
_cancelled = set()


class Refused(Exception):
    """An input the runner will not act on; becomes {ok: false, error: {code, message}}."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def send(msg):
    # ensure_ascii keeps undecodable file names (surrogate escapes) valid JSON.
    line = (json.dumps(msg, separators=(",", ":")) + "\n").encode("ascii")
    with _out_lock:
        _out.write(line)
        _out.flush()


def log(*parts):
    print("runner:", *parts, file=sys.stderr, flush=True)


# --- paths -------------------------------------------------------------------------------


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


# --- actions -----------------------------------------------------------------------------


def op_create_file(req):
    base = task_dir(req["task"])
    full, real = resolve(base, req["filePath"])
    if real == base:
        raise Refused("is_directory", "%s is the task directory" % req["filePath"])
    parent = os.path.dirname(real)
    try:
        os.makedirs(parent, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise Refused("not_a_directory", "a parent of %s is a file" % req["filePath"])
    # The parent may have been swapped for a symlink meanwhile (commands run concurrently).
    if not inside(os.path.realpath(parent), base):
        raise Refused("path_outside_workspace", "%s resolves outside the task directory through a symlink" % req["filePath"])
    overwritten = False
    try:
        st = os.lstat(real)
        if stat.S_ISDIR(st.st_mode):
            raise Refused("is_directory", "%s is a directory" % req["filePath"])
        overwritten = True
    except FileNotFoundError:
        pass
    data = req["content"].encode("utf-8", "replace")
    try:
        fd = os.open(real, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as e:
        if e.errno == 40:  # ELOOP: a symlink appeared at the final component
            raise Refused("path_outside_workspace", "%s is a symlink" % req["filePath"])
        raise
    with os.fdopen(fd, "wb") as f:
        f.write(data)
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


def op_read_file(req):
    base = task_dir(req["task"])
    full, real = resolve(base, req["filePath"])
    try:
        st = os.stat(real)
    except FileNotFoundError:
        raise Refused("not_found", "%s does not exist" % req["filePath"])
    if stat.S_ISDIR(st.st_mode):
        raise Refused("is_directory", "%s is a directory; use list-files" % req["filePath"])
    if not stat.S_ISREG(st.st_mode):
        raise Refused("not_a_file", "%s is not a regular file" % req["filePath"])
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
    base = task_dir(req["task"])
    full, real = resolve(base, req.get("path") or ".")
    try:
        st = os.stat(real)
    except FileNotFoundError:
        raise Refused("not_found", "%s does not exist" % (req.get("path") or "."))
    root_rel = rel(base, full)
    if not stat.S_ISDIR(st.st_mode):
        return {"action": "list-files", "path": root_rel, "files": [{"path": root_rel, "size": st.st_size, "type": "file"}], "truncated": False}
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
    return {"action": "list-files", "path": root_rel, "files": files, "truncated": state["truncated"]}


def kill_group(pgid):
    # Two passes: a process forking at the moment of the first kill is caught by the second.
    for _ in range(2):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.005)


# --- warm shells ----------------------------------------------------------------------------
#
# Starting bash costs ~1.2 ms of exec and initialisation, most of a short command's latency. The
# pool keeps shells that are already started — in their own session, stdout/stderr piped —
# blocked on a one-byte "go" pipe. A command is written to a memfd the shell inherited (a regular
# file: bash's `read` takes it in buffered chunks, where a pipe is read one byte per syscall),
# then "go" is sent; the shell cds into the task's directory and evals the command. The one
# observable difference from a fresh `bash -c`: $LINENO inside multi-line commands. The pool refills in the background, off the command's path.

_BOOT = (
    "read -r -n 1 -u {go} __research_go || exit 0; exec {go}<&-; "
    "IFS= read -r -d '' -u {m} __research_cwd; IFS= read -r -d '' -u {m} __research_cmd; exec {m}<&-; "
    'cd -- "$__research_cwd" || exit 126; unset __research_go __research_cwd OLDPWD; '
    'BASH_EXECUTION_STRING=$__research_cmd; eval "unset __research_cmd; $__research_cmd"'
)


class ShellPool:
    def __init__(self):
        self.cond = threading.Condition()
        self.ready = []
        self.spawning = 0

    def enabled(self):
        return SHELL == "/bin/bash" and CONFIG["warmShells"] > 0 and hasattr(os, "memfd_create")

    def _start(self):
        m = os.memfd_create("research-command", 0)
        r, w = os.pipe()
        try:
            proc = subprocess.Popen(
                [SHELL, "-c", _BOOT.format(go=r, m=m)],
                cwd=workspace_root(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(r, m),
                start_new_session=True,
            )
        except BaseException:
            os.close(w)
            os.close(m)
            raise
        finally:
            os.close(r)
        return proc, w, m

    def take(self):
        """A ready shell, or None (the caller starts a fresh one)."""
        if not self.enabled():
            return None
        with self.cond:
            if not self.ready and self.spawning:
                # A shell that is half started is ready sooner than a new one.
                self.cond.wait_for(lambda: self.ready or not self.spawning, timeout=0.05)
            return self.ready.pop(0) if self.ready else None

    def refill(self):
        """Tops the pool up; called by a request's thread after its reply is out, so the spawn
        work never sits on a command's path."""
        if not self.enabled():
            return
        while True:
            with self.cond:
                if len(self.ready) + self.spawning >= CONFIG["warmShells"]:
                    return
                self.spawning += 1
            shell = None
            try:
                shell = self._start()
            except OSError:
                pass  # no pid left (fork bomb?): the next command starts its shell itself
            with self.cond:
                self.spawning -= 1
                if shell:
                    self.ready.append(shell)
                self.cond.notify_all()
            if shell is None:
                return

    def run(self, shell, cwd, command):
        proc, w, m = shell
        try:
            payload = cwd.encode("utf-8", "surrogateescape") + b"\0" + command + b"\0"
            view = memoryview(payload)
            while view:
                view = view[os.write(m, view):]
            os.lseek(m, 0, os.SEEK_SET)  # the shell shares this offset
            os.write(w, b"g")
            return proc
        except OSError:
            kill_group(proc.pid)
            proc.wait()
            proc.stdout.close()
            proc.stderr.close()
            return None
        finally:
            os.close(w)
            os.close(m)

    def drain(self):
        with self.cond:
            shells, self.ready = self.ready, []
        for proc, w, m in shells:
            os.close(w)
            os.close(m)
            proc.wait()


POOL = ShellPool()


def spawn_command(command, cwd):
    shell = POOL.take()
    if shell:
        proc = POOL.run(shell, cwd, command)
        if proc is not None:
            return proc
    return subprocess.Popen(
        [SHELL, "-c", command],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # own process group: a timeout kills all of it
        close_fds=True,
    )


def op_execute_command(req):
    base = task_dir(req["task"])
    cwd_full, cwd = resolve(base, req.get("cwd") or ".")
    if not os.path.isdir(cwd):
        raise Refused("not_found", "cwd %s is not an existing directory" % (req.get("cwd") or "."))
    cap = int(req.get("maxOutputBytes") or CONFIG["maxOutputBytes"])
    timeout_s = max(0.001, float(req["timeoutMs"]) / 1000.0)
    if "\0" in req["command"]:
        raise Refused("invalid_action", "command contains a NUL byte")
    try:
        command = req["command"].encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        command = req["command"].encode("utf-8", "replace")
    start = time.monotonic()
    try:
        proc = spawn_command(command, cwd)
    except BlockingIOError as e:
        raise Refused("resource_exhausted", "cannot start the command: %s (process limit reached?)" % e)
    pgid = proc.pid
    rid = req["id"]
    with _procs_lock:
        _running[rid] = (req["task"], pgid)
        groups = _task_groups.setdefault(req["task"], [])
        groups.append(pgid)
        del groups[:-64]
    try:
        stdout, stderr, truncated, timed_out = _collect(proc, cap, start + timeout_s)
    finally:
        with _procs_lock:
            _running.pop(rid, None)
            cancelled = rid in _cancelled
            _cancelled.discard(rid)
    rc = proc.returncode
    exit_code = 124 if timed_out else (128 - rc if rc < 0 else rc)
    marker = "\n[… output truncated at %d bytes]" % cap
    out = stdout.decode("utf-8", "replace") + (marker if truncated["out"] else "")
    err = stderr.decode("utf-8", "replace") + (marker if truncated["err"] else "")
    if cancelled and not timed_out:
        err += "\n[command cancelled]"
    return {
        "action": "execute-command",
        "exitCode": exit_code,
        "stdout": out,
        "stderr": err,
        "timedOut": timed_out,
        "truncated": truncated["out"] or truncated["err"],
        "durationMs": round((time.monotonic() - start) * 1000, 3),
    }


def _collect(proc, cap, deadline):
    """Reads both pipes until the main process exits (not until EOF: a background job may hold
    the pipes open for ever), or until the deadline, when the whole group is killed."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, "out")
    sel.register(proc.stderr, selectors.EVENT_READ, "err")
    pidfd = None
    try:
        pidfd = os.pidfd_open(proc.pid)
        sel.register(pidfd, selectors.EVENT_READ, "exit")
    except (AttributeError, OSError):
        pidfd = None
    bufs = {"out": bytearray(), "err": bytearray()}
    truncated = {"out": False, "err": False}
    streams = 2
    exited = False
    timed_out = False
    drain_until = None

    def read(key):
        nonlocal streams
        data = os.read(key.fd, 65536)
        if not data:
            sel.unregister(key.fileobj)
            streams -= 1
            return False
        buf = bufs[key.data]
        room = cap - len(buf)
        if len(data) > room:
            truncated[key.data] = True
        if room > 0:
            buf += data[:room]
        return True

    try:
        # With a pidfd, keep selecting until the exit is seen: the pipes reach EOF a moment before
        # the process can be reaped, and Popen.wait(timeout) would poll in 0.5 ms+ sleeps.
        while streams > 0 or (pidfd is not None and not exited):
            now = time.monotonic()
            if exited:
                # Take what is already in the pipes, then stop; bounded against chatty orphans.
                if drain_until is None:
                    drain_until = now + 0.1
                got = False
                for key, _ in sel.select(0):
                    if key.data != "exit" and read(key):
                        got = True
                if not got or now > drain_until or streams == 0:
                    break
                continue
            if now >= deadline:
                timed_out = True
                kill_group(proc.pid)
                exited = True
                continue
            wait = deadline - now if pidfd is not None else min(deadline - now, 0.01)
            for key, _ in sel.select(wait):
                if key.data == "exit":
                    sel.unregister(key.fileobj)
                    exited = True
                else:
                    read(key)
            if pidfd is None and proc.poll() is not None:
                exited = True
        if not timed_out:
            # Pipes closed but the process lives on (it closed its stdout early): wait for it.
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                timed_out = True
                kill_group(proc.pid)
        proc.wait()
    finally:
        sel.close()
        if pidfd is not None:
            os.close(pidfd)
        proc.stdout.close()
        proc.stderr.close()
    return bytes(bufs["out"]), bytes(bufs["err"]), truncated, timed_out


def op_cancel(req):
    """Kills one running request's process group (the host aborted it)."""
    with _procs_lock:
        entry = _running.get(req["target"])
        if entry:
            _cancelled.add(req["target"])
    if entry:
        kill_group(entry[1])
    return {"killed": 1 if entry else 0}


def op_cancel_task(req):
    task = req["task"]
    with _procs_lock:
        running = [(rid, g) for rid, (t, g) in _running.items() if t == task]
        others = {g for (t, g) in _running.values() if t != task}
        # A finished command's group id is only killed while no other task's command owns it.
        leftovers = [g for g in _task_groups.get(task, []) if g not in others]
        for rid, _ in running:
            _cancelled.add(rid)
    for g in set(leftovers) | {g for _, g in running}:
        kill_group(g)
    return {"killed": len(running)}


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


def op_ping(_req):
    return {"pong": True}


OPS = {
    "create-file": op_create_file,
    "read-file": op_read_file,
    "list-files": op_list_files,
    "execute-command": op_execute_command,
    "cancel": op_cancel,
    "cancel-task": op_cancel_task,
    "export": op_export,
    "cleanup": op_cleanup,
    "ping": op_ping,
}
# Ops that only signal process groups run on the main thread: they must work when no thread can
# be started, which is when they are needed most (a fork bomb holding the pids limit).
INLINE_OPS = {"cancel", "cancel-task"}
TOUCHES_TASK = {"create-file", "read-file", "list-files", "execute-command"}


def handle(req):
    rid = req.get("id")
    try:
        fn = OPS.get(req.get("op"))
        if fn is None:
            raise Refused("invalid_action", "unknown op %r" % req.get("op"))
        result = fn(req)
        if req.get("op") in TOUCHES_TASK:
            # The task directory's mtime is its last activity, which retention counts from.
            try:
                os.utime(os.path.join(workspace_root(), req["task"]))
            except OSError:
                pass
        send({"id": rid, "ok": True, "result": result})
        if req.get("op") == "execute-command":
            POOL.refill()
    except Refused as e:
        send({"id": rid, "ok": False, "error": {"code": e.code, "message": e.message}})
    except KeyError as e:
        send({"id": rid, "ok": False, "error": {"code": "invalid_action", "message": "missing field %s" % e}})
    except PermissionError as e:
        send({"id": rid, "ok": False, "error": {"code": "permission_denied", "message": "%s: %s" % (e.strerror, e.filename)}})
    except OSError as e:
        send({"id": rid, "ok": False, "error": {"code": "io_error", "message": "%s: %s" % (e.strerror, e.filename)}})
    except Exception as e:  # noqa: BLE001 - the runner must survive any single request
        log("request", rid, "failed:", repr(e))
        send({"id": rid, "ok": False, "error": {"code": "runner_error", "message": repr(e)}})


def main():
    if len(sys.argv) > 1:
        CONFIG.update(json.loads(sys.argv[1]))
    _thread.start_new_thread(POOL.refill, ())
    send({"id": 0, "ready": True, "protocol": PROTOCOL, "pid": os.getpid(), "uid": os.getuid(), "shell": SHELL})
    for line in sys.stdin.buffer:
        try:
            req = json.loads(line)
        except ValueError:
            log("bad request line")
            continue
        if req.get("op") in INLINE_OPS:
            handle(req)
            continue
        try:
            # The low-level call: threading.Thread.start() waits for the thread to be scheduled,
            # a context switch on every request.
            _thread.start_new_thread(handle, (req,))
        except RuntimeError as e:
            # No thread left: the container's pids limit is exhausted (a fork bomb?).
            send({"id": req.get("id"), "ok": False, "error": {"code": "resource_exhausted", "message": "runner cannot start a thread: %s" % e}})
    # stdin closed: the worker went away; its commands go with it.
    POOL.drain()
    with _procs_lock:
        groups = [g for (_, g) in _running.values()]
    for g in groups:
        kill_group(g)


if __name__ == "__main__":
    main()
