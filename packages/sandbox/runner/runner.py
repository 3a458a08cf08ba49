#!/usr/bin/env python3
"""In-container runner of @research/sandbox.

One long-lived process per container, started by the worker through a single attached
`docker exec`. It speaks line-delimited JSON: one request per stdin line, one reply per stdout
line, matched by `id`, so concurrent actions of concurrent tasks never mix their outputs.
Commands are watched by one event loop on the main thread; file requests run on threads of
their own. Needs only python3 (stdlib) and a POSIX shell, which is
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
# observable difference from a fresh `bash -c`: $LINENO inside multi-line commands. A keeper
# thread refills the pool, off the command's path.

_BOOT = (
    "read -r -n 1 -u {go} __research_go || exit 0; exec {go}<&-; "
    "IFS= read -r -d '' -u {m} __research_cwd; IFS= read -r -d '' -u {m} __research_cmd; exec {m}<&-; "
    'cd -- "$__research_cwd" || exit 126; unset __research_go __research_cwd OLDPWD; '
    'BASH_EXECUTION_STRING=$__research_cmd; eval "unset __research_cmd; $__research_cmd"'
)


class SpawnedProcess:
    """The part of subprocess.Popen the runner uses, for a process started by Spawner."""

    def __init__(self, pid, stdout, stderr):
        self.pid = pid
        self.stdout = stdout
        self.stderr = stderr
        self.returncode = None

    def poll(self):
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self):
        if self.returncode is None:
            _, status = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode


class Spawner:
    """libc posix_spawn through ctypes, which releases the GIL: subprocess holds it until the
    child has exec'd (~0.5 ms under vfork), which stalled the main loop — and the command it was
    watching — every time the keeper started a warm shell. Popen is the fallback."""

    SETSIGDEF, SETSID = 0x04, 0x80  # same values in glibc and musl

    def __init__(self):
        self.libc = None
        self.failed = False

    def usable(self):
        if self.libc is None and not self.failed:
            try:
                import ctypes

                libc = ctypes.CDLL(None, use_errno=True)
                libc.posix_spawn, libc.posix_spawnattr_setflags, libc.sigaddset  # noqa: B018
                self.ctypes, self.libc = ctypes, libc
            except (ImportError, OSError, AttributeError):
                self.failed = True
        return self.libc is not None

    def spawn(self, argv, keep_fds):
        ctypes, libc = self.ctypes, self.libc
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        fa = ctypes.create_string_buffer(1024)  # opaque libc structs: generously sized
        attr = ctypes.create_string_buffer(1024)
        sigs = ctypes.create_string_buffer(256)
        try:
            for fd in keep_fds:
                os.set_inheritable(fd, True)
            libc.posix_spawn_file_actions_init(fa)
            libc.posix_spawnattr_init(attr)
            libc.posix_spawn_file_actions_addopen(fa, 0, b"/dev/null", os.O_RDONLY, 0)
            libc.posix_spawn_file_actions_adddup2(fa, out_w, 1)
            libc.posix_spawn_file_actions_adddup2(fa, err_w, 2)
            # Python ignores SIGPIPE (and XFSZ); commands must get the defaults, as Popen gives them.
            libc.sigemptyset(sigs)
            for sig in (signal.SIGPIPE, signal.SIGXFSZ):
                libc.sigaddset(sigs, int(sig))
            libc.posix_spawnattr_setsigdefault(attr, sigs)
            libc.posix_spawnattr_setflags(attr, ctypes.c_short(self.SETSIGDEF | self.SETSID))
            c_argv = (ctypes.c_char_p * (len(argv) + 1))(*[a.encode() for a in argv], None)
            env = [("%s=%s" % kv).encode("utf-8", "surrogateescape") for kv in os.environ.items()]
            c_env = (ctypes.c_char_p * (len(env) + 1))(*env, None)
            pid = ctypes.c_int(0)
            rc = libc.posix_spawn(ctypes.byref(pid), argv[0].encode(), fa, attr, c_argv, c_env)
            if rc != 0:
                raise OSError(rc, os.strerror(rc))
        except BaseException:
            for fd in (out_r, err_r):
                os.close(fd)
            raise
        finally:
            libc.posix_spawn_file_actions_destroy(fa)
            libc.posix_spawnattr_destroy(attr)
            for fd in keep_fds:
                os.set_inheritable(fd, False)
            os.close(out_w)
            os.close(err_w)
        return SpawnedProcess(pid.value, os.fdopen(out_r, "rb", buffering=0), os.fdopen(err_r, "rb", buffering=0))


SPAWNER = Spawner()


class ShellPool:
    def __init__(self):
        self.cond = threading.Condition()
        self.ready = []
        self.spawning = 0

    def enabled(self):
        return SHELL == "/bin/bash" and CONFIG["warmShells"] > 0 and hasattr(os, "memfd_create")

    def _start(self):
        m = os.memfd_create("research-command")
        r, w = os.pipe()
        try:
            argv = [SHELL, "-c", _BOOT.format(go=r, m=m)]
            proc = SPAWNER.spawn(argv, (r, m)) if SPAWNER.usable() else None
            if proc is None:
                proc = subprocess.Popen(
                    argv,
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
                self.cond.wait_for(lambda: self.ready, timeout=0.005)
            shell = self.ready.pop(0) if self.ready else None
            self.cond.notify_all()  # wakes the keeper
            return shell

    def keeper(self):
        """Keeps the pool full, on its own thread, so spawning never sits on a command's path."""
        while self.enabled():
            with self.cond:
                self.cond.wait_for(lambda: len(self.ready) + self.spawning < CONFIG["warmShells"])
                self.spawning += 1
            shell = None
            try:
                shell = self._start()
            except OSError:
                pass
            with self.cond:
                self.spawning -= 1
                if shell:
                    self.ready.append(shell)
                self.cond.notify_all()
            if shell is None:
                time.sleep(0.2)  # no pid left (a fork bomb?): commands start their own shells

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


# --- commands: watched by one event loop on the main thread ---------------------------------
#
# A command costs no thread: the main loop selects over stdin, every command's stdout/stderr and
# a pidfd per command (readable when it exits). A reply is due when the command's main process
# exits — not at EOF, since a background job may hold the pipes open for ever — or at the
# deadline, when its whole process group is SIGKILLed.

MARKER = "\n[… output truncated at %d bytes]"


class Command:
    def __init__(self, rid, task, proc, cap, start, deadline):
        self.rid = rid
        self.task = task
        self.proc = proc
        self.cap = cap
        self.start = start
        self.deadline = deadline
        self.bufs = {"out": bytearray(), "err": bytearray()}
        self.truncated = {"out": False, "err": False}
        self.open = {"out": proc.stdout, "err": proc.stderr}
        self.pidfd = None
        self.exited = False
        self.timed_out = False


class Loop:
    def __init__(self):
        self.sel = selectors.DefaultSelector()
        self.commands = {}
        self.pending = bytearray()

    # requests --------------------------------------------------------------------------------

    def run(self):
        os.set_blocking(0, False)
        self.sel.register(0, selectors.EVENT_READ, ("stdin", None))
        while True:
            for key, _ in self.sel.select(self.timeout()):
                kind, cmd = key.data
                if kind == "stdin":
                    if not self.read_stdin():
                        return
                elif kind == "exit":
                    self.sel.unregister(key.fd)
                    cmd.exited = True
                    self.finish(cmd)
                else:
                    self.read(cmd, kind)
            self.tick()

    def read_stdin(self):
        try:
            data = os.read(0, 1 << 20)
        except BlockingIOError:
            return True
        if not data:
            return False
        self.pending += data
        while True:
            nl = self.pending.find(b"\n")
            if nl < 0:
                return True
            line = bytes(self.pending[:nl])
            del self.pending[: nl + 1]
            self.dispatch(line)

    def dispatch(self, line):
        try:
            req = json.loads(line)
        except ValueError:
            log("bad request line")
            return
        op = req.get("op")
        if op == "execute-command":
            try:
                self.start(req)
            except Exception as e:  # noqa: BLE001 - becomes the reply
                send_error(req.get("id"), e)
        elif op in INLINE_OPS:
            # Signalling must work when no thread can be started — a fork bomb holding the pids
            # limit is exactly when it is needed.
            handle(req)
        else:
            try:
                # The low-level call: threading.Thread.start() waits for the thread to be
                # scheduled, a context switch on every request.
                _thread.start_new_thread(handle, (req,))
            except RuntimeError as e:
                send({"id": req.get("id"), "ok": False, "error": {"code": "resource_exhausted", "message": "runner cannot start a thread: %s (process limit reached?)" % e}})

    # commands --------------------------------------------------------------------------------

    def start(self, req):
        base = task_dir(req["task"])
        _, cwd = resolve(base, req.get("cwd") or ".")
        if not os.path.isdir(cwd):
            raise Refused("not_found", "cwd %s is not an existing directory" % (req.get("cwd") or "."))
        if "\0" in req["command"]:
            raise Refused("invalid_action", "command contains a NUL byte")
        try:
            command = req["command"].encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            command = req["command"].encode("utf-8", "replace")
        cap = int(req.get("maxOutputBytes") or CONFIG["maxOutputBytes"])
        start = time.monotonic()
        try:
            proc = spawn_command(command, cwd)
        except BlockingIOError as e:
            raise Refused("resource_exhausted", "cannot start the command: %s (process limit reached?)" % e)
        cmd = Command(req["id"], req["task"], proc, cap, start, start + max(0.001, float(req["timeoutMs"]) / 1000.0))
        with _procs_lock:
            _running[cmd.rid] = (cmd.task, proc.pid)
            groups = _task_groups.setdefault(cmd.task, [])
            groups.append(proc.pid)
            del groups[:-64]
        self.commands[cmd.rid] = cmd
        for kind, f in cmd.open.items():
            os.set_blocking(f.fileno(), False)
            self.sel.register(f, selectors.EVENT_READ, (kind, cmd))
        try:
            cmd.pidfd = os.pidfd_open(proc.pid)
            self.sel.register(cmd.pidfd, selectors.EVENT_READ, ("exit", cmd))
        except (AttributeError, OSError):
            cmd.pidfd = None  # old kernel: tick() polls

    def read(self, cmd, kind):
        f = cmd.open.get(kind)
        if f is None:
            return False
        try:
            data = os.read(f.fileno(), 65536)
        except BlockingIOError:
            return False
        if not data:
            self.sel.unregister(f)
            f.close()
            del cmd.open[kind]
            return False
        buf = cmd.bufs[kind]
        room = cmd.cap - len(buf)
        if len(data) > room:
            cmd.truncated[kind] = True
        if room > 0:
            buf += data[:room]
        return True

    def timeout(self):
        if not self.commands:
            return None
        now = time.monotonic()
        wait = max(0.0, min(c.deadline for c in self.commands.values() if not c.timed_out) - now) if any(not c.timed_out for c in self.commands.values()) else None
        if any(c.pidfd is None for c in self.commands.values()):
            wait = 0.01 if wait is None else min(wait, 0.01)
        return wait

    def tick(self):
        now = time.monotonic()
        for cmd in list(self.commands.values()):
            if not cmd.timed_out and now >= cmd.deadline:
                cmd.timed_out = True
                kill_group(cmd.proc.pid)
            if cmd.pidfd is None and cmd.proc.poll() is not None:
                cmd.exited = True
                self.finish(cmd)

    def finish(self, cmd):
        # Take what the pipes already hold (bounded against a chatty orphan), then reply.
        for kind in list(cmd.open):
            for _ in range(64):
                if not self.read(cmd, kind):
                    break
        for f in list(cmd.open.values()):
            self.sel.unregister(f)
            f.close()
        cmd.open.clear()
        if cmd.pidfd is not None:
            os.close(cmd.pidfd)
        rc = cmd.proc.wait()
        del self.commands[cmd.rid]
        with _procs_lock:
            _running.pop(cmd.rid, None)
            cancelled = cmd.rid in _cancelled
            _cancelled.discard(cmd.rid)
        out = cmd.bufs["out"].decode("utf-8", "replace") + (MARKER % cmd.cap if cmd.truncated["out"] else "")
        err = cmd.bufs["err"].decode("utf-8", "replace") + (MARKER % cmd.cap if cmd.truncated["err"] else "")
        if cancelled and not cmd.timed_out:
            err += "\n[command cancelled]"
        touch_task(cmd.task)
        send({
            "id": cmd.rid,
            "ok": True,
            "result": {
                "action": "execute-command",
                "exitCode": 124 if cmd.timed_out else (128 - rc if rc < 0 else rc),
                "stdout": out,
                "stderr": err,
                "timedOut": cmd.timed_out,
                "truncated": cmd.truncated["out"] or cmd.truncated["err"],
                "durationMs": round((time.monotonic() - cmd.start) * 1000, 3),
            },
        })

    def shutdown(self):
        for cmd in list(self.commands.values()):
            kill_group(cmd.proc.pid)


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
    with _procs_lock:
        _task_groups.pop(task, None)
    return {"killed": len(running), "escaped": sweep_escaped()}


def sweep_escaped():
    """Kills the action user's processes that left every tracked process group (`setsid`, a
    daemon): no cancel or timeout can reach them otherwise, and a fork bomb among them would hold
    the container's pids limit for every later task. Runs when a task ends or is cancelled, so a
    task's process that escaped its group lives at most until some task ends. Not when the runner
    is root: then the engine's own execs share its uid."""
    uid = os.getuid()
    if uid == 0:
        return 0
    keep = {os.getpgid(0)}
    with _procs_lock:
        keep.update(g for (_, g) in _running.values())
        for groups in _task_groups.values():
            keep.update(groups)
    with POOL.cond:
        keep.update(shell[0].pid for shell in POOL.ready)
    me = os.getpid()
    killed = 0
    for _ in range(50):  # a bomb forks while it is being killed: sweep until nothing is left
        found = 0
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) in (1, me):
                continue
            try:
                if os.stat("/proc/" + name).st_uid != uid:
                    continue
                with open("/proc/%s/stat" % name, "rb") as f:
                    stat_line = f.read()
                # The command name may hold spaces and parentheses: the fields follow the last ")".
                fields = stat_line[stat_line.rindex(b")") + 2 :].split()
                if fields[0] == b"Z" or int(fields[2]) in keep:
                    continue
                os.kill(int(name), signal.SIGKILL)
                found += 1
            except (OSError, ValueError, IndexError):
                continue
        killed += found
        if not found:
            break
        time.sleep(0.005)
    return killed


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
    "cancel": op_cancel,
    "cancel-task": op_cancel_task,
    "export": op_export,
    "cleanup": op_cleanup,
    "ping": op_ping,
}
# Ops that only signal process groups run on the main thread (see Loop.dispatch).
INLINE_OPS = {"cancel", "cancel-task"}
TOUCHES_TASK = {"create-file", "read-file", "list-files", "execute-command"}


def touch_task(task):
    # The task directory's mtime is its last activity, which retention counts from.
    try:
        os.utime(os.path.join(workspace_root(), task))
    except OSError:
        pass


def send_error(rid, e):
    if isinstance(e, Refused):
        error = {"code": e.code, "message": e.message}
    elif isinstance(e, KeyError):
        error = {"code": "invalid_action", "message": "missing field %s" % e}
    elif isinstance(e, PermissionError):
        error = {"code": "permission_denied", "message": "%s: %s" % (e.strerror, e.filename)}
    elif isinstance(e, OSError):
        error = {"code": "io_error", "message": "%s: %s" % (e.strerror, e.filename)}
    else:
        log("request", rid, "failed:", repr(e))
        error = {"code": "runner_error", "message": repr(e)}
    send({"id": rid, "ok": False, "error": error})


def handle(req):
    rid = req.get("id")
    try:
        fn = OPS.get(req.get("op"))
        if fn is None:
            raise Refused("invalid_action", "unknown op %r" % req.get("op"))
        result = fn(req)
        if req.get("op") in TOUCHES_TASK:
            touch_task(req["task"])
        send({"id": rid, "ok": True, "result": result})
    except Exception as e:  # noqa: BLE001 - the runner must survive any single request
        send_error(rid, e)


def main():
    if len(sys.argv) > 1:
        CONFIG.update(json.loads(sys.argv[1]))
    if POOL.enabled():
        _thread.start_new_thread(POOL.keeper, ())
    send({"id": 0, "ready": True, "protocol": PROTOCOL, "pid": os.getpid(), "uid": os.getuid(), "shell": SHELL})
    loop = Loop()
    try:
        loop.run()
    finally:
        # stdin closed: the worker went away; its commands go with it.
        loop.shutdown()
        POOL.drain()


if __name__ == "__main__":
    main()
