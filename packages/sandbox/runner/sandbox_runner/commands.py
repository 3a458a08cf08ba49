"""Commands, watched by one event loop on the main thread."""
import _thread
import json
import os
import selectors
import signal
import threading
import time

from .paths import resolve, task_dir, workspace_root
from .procs import kill_group
from .proto import CONFIG, Refused, log, send, send_error
from .shells import POOL, spawn_command

# Running commands: request id -> (task id, process group id); and every process group a
# task ever started, so cancel-task also reaches background jobs left by finished commands.
_procs_lock = threading.Lock()
_running = {}
_task_groups = {}
_cancelled = set()


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
    def __init__(self, handle, inline_ops):
        self.sel = selectors.DefaultSelector()
        self.commands = {}
        self.pending = bytearray()
        self.handle = handle
        self.inline_ops = inline_ops

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
        elif op in self.inline_ops:
            # Signalling must work when no thread can be started — a fork bomb holding the pids
            # limit is exactly when it is needed.
            self.handle(req)
        else:
            try:
                # The low-level call: threading.Thread.start() waits for the thread to be
                # scheduled, a context switch on every request.
                _thread.start_new_thread(self.handle, (req,))
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


def touch_task(task):
    # The task directory's mtime is its last activity, which retention counts from.
    try:
        os.utime(os.path.join(workspace_root(), task))
    except OSError:
        pass
