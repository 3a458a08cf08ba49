"""Commands, watched by one event loop on the main thread.

A command costs no thread: the loop selects over stdin, every command's stdout/stderr and a
pidfd per command (readable when it exits). A reply is due when the command's main process
exits — not at EOF, since a background job may hold the pipes open for ever — or at the
deadline, when its whole process group is SIGKILLed.
"""
import _thread
import codecs
import json
import os
import selectors
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Optional

from . import identity, procs
from .paths import resolve
from .privs import as_task
from .proto import CONFIG, Refused, log, send, send_error
from .quota import GROWTH_SLACK, USAGE, enabled, mb, quota, volume_used
from .shells import POOL, spawn_command

MARKER = "\n[… output truncated at %d bytes]"
LIVE_MARKER = "\n[… live output stops at %d bytes; the step's result has the rest]"
STREAMS = {"out": "stdout", "err": "stderr"}

# Running commands: request id -> (task id, process group id).
procs_lock = threading.Lock()
running = {}
_cancelled = set()


@dataclass(eq=False)
class Command:
    """One running command: what it was started with, and what the loop has seen of it."""

    rid: int
    task: str
    uid: int
    proc: subprocess.Popen
    cap: int
    start: float
    deadline: float
    # For the disk quota (None when it is off): the task's and the volume's use before the
    # command started, and what the command may still write.
    used_before: Optional[int] = None
    budget: Optional[int] = None
    volume_before: Optional[int] = None
    live: Optional["Live"] = None
    bufs: dict = field(default_factory=lambda: {"out": bytearray(), "err": bytearray()})
    truncated: dict = field(default_factory=lambda: {"out": False, "err": False})
    open: dict = field(init=False)
    pidfd: Optional[int] = None
    timed_out: bool = False

    def __post_init__(self):
        self.open = {"out": self.proc.stdout, "err": self.proc.stderr}


class Live:
    """A command's output sent while it runs ({"id", "output": {stream, chunk}} lines, before its
    reply): coalesced, at most one line per stream every `interval` seconds, `max_bytes` in all.
    The reply still carries the whole output; this only shows it early, so what it costs is
    bounded per command whatever the command prints."""

    def __init__(self, spec):
        self.interval = max(0.05, float(spec.get("intervalMs") or 250) / 1000.0)
        self.max_bytes = max(0, int(spec.get("maxBytes") or 4 * 1024))
        self.pending = {"out": bytearray(), "err": bytearray()}
        self.decoders = {k: codecs.getincrementaldecoder("utf-8")("replace") for k in STREAMS}
        self.taken = 0
        self.next_at = 0.0
        self.capped = False

    def take(self, kind, data):
        if self.capped:
            return
        room = self.max_bytes - self.taken
        self.pending[kind] += data[:room]
        self.taken += min(len(data), room)
        if len(data) > room:
            self.capped = True

    def due(self):
        """When the next line may go out, or None when nothing waits."""
        if any(self.pending.values()) or self.capped is True:
            return self.next_at
        return None

    def flush(self, rid, now, final=False):
        if not final and now < self.next_at:
            return
        sent = 0
        for kind, buf in self.pending.items():
            if not buf and not final:
                continue
            chunk = self.decoders[kind].decode(bytes(buf), final)
            buf.clear()
            if chunk:
                send({"id": rid, "output": {"stream": STREAMS[kind], "chunk": chunk}})
                sent += 1
        if self.capped is True:
            send({"id": rid, "output": {"stream": "stdout", "chunk": LIVE_MARKER % self.max_bytes, "truncated": True}})
            self.capped = "told"
            sent += 1
        if sent:
            self.next_at = now + self.interval * sent


class Loop:
    def __init__(self, handle, inline_ops):
        self.sel = selectors.DefaultSelector()
        self.commands = {}
        self.pending = bytearray()
        self.handle = handle
        self.inline_ops = inline_ops

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
        task = req["task"]
        base, uid = identity.task_dir(task)
        with as_task(uid):
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
        used = USAGE.used(task, uid) if enabled() else None
        budget = None if used is None else max(0, quota() - used)
        volume_before = volume_used() if enabled() else None
        start = time.monotonic()
        try:
            proc = spawn_command(task, uid, cwd, budget, command)
        except BlockingIOError as e:
            raise Refused("resource_exhausted", "cannot start the command: %s (process limit reached?)" % e)
        USAGE.started(task, uid, used)
        POOL.want(task, uid, command=True)
        deadline = start + max(0.001, float(req["timeoutMs"]) / 1000.0)
        live = Live(req["live"]) if req.get("live") else None
        cmd = Command(req["id"], task, uid, proc, cap, start, deadline, used, budget, volume_before, live)
        with procs_lock:
            running[cmd.rid] = (task, proc.pid)
        self.commands[cmd.rid] = cmd
        for kind, f in cmd.open.items():
            os.set_blocking(f.fileno(), False)
            self.sel.register(f, selectors.EVENT_READ, (kind, cmd))
        try:
            cmd.pidfd = os.pidfd_open(proc.pid)
            self.sel.register(cmd.pidfd, selectors.EVENT_READ, ("exit", cmd))
        except (AttributeError, OSError):
            cmd.pidfd = None  # python < 3.9 or an old kernel: tick() polls
        POOL.running(1)

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
        if cmd.live is not None:
            cmd.live.take(kind, data)
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
        due = [c.deadline for c in self.commands.values() if not c.timed_out]
        due += [d for d in (c.live.due() for c in self.commands.values() if c.live) if d is not None]
        wait = max(0.0, min(due) - now) if due else None
        if any(c.pidfd is None for c in self.commands.values()):
            wait = 0.01 if wait is None else min(wait, 0.01)
        return wait

    def tick(self):
        now = time.monotonic()
        for cmd in list(self.commands.values()):
            if not cmd.timed_out and now >= cmd.deadline:
                cmd.timed_out = True
                procs.kill_group(cmd.proc.pid)
            if cmd.live is not None and cmd.live.due() is not None:
                cmd.live.flush(cmd.rid, now)
            if cmd.pidfd is None and cmd.proc.poll() is not None:
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
        if cmd.live is not None:
            # What is left goes out now, so every live line comes before the reply.
            cmd.live.flush(cmd.rid, time.monotonic(), final=True)
        del self.commands[cmd.rid]
        with procs_lock:
            running.pop(cmd.rid, None)
            cancelled = cmd.rid in _cancelled
            _cancelled.discard(cmd.rid)
        out = cmd.bufs["out"].decode("utf-8", "replace") + (MARKER % cmd.cap if cmd.truncated["out"] else "")
        err = cmd.bufs["err"].decode("utf-8", "replace") + (MARKER % cmd.cap if cmd.truncated["err"] else "")
        if cancelled and not cmd.timed_out:
            err += "\n[command cancelled]"
        result = {
            "action": "execute-command",
            "exitCode": 124 if cmd.timed_out else (128 - rc if rc < 0 else rc),
            "stdout": out,
            "stderr": err,
            "timedOut": cmd.timed_out,
            "truncated": cmd.truncated["out"] or cmd.truncated["err"],
            "durationMs": round((time.monotonic() - cmd.start) * 1000, 3),
        }
        if enabled():
            stopped = USAGE.finished(cmd.task, cmd.start)
            if stopped or rc == -signal.SIGXFSZ or USAGE.could_have_passed(cmd.task, cmd.budget, cmd.volume_before):
                # Measuring the task's files takes time proportional to their number: not on this loop.
                try:
                    _thread.start_new_thread(settle, (cmd, rc, result, stopped))
                except RuntimeError:
                    settle(cmd, rc, result, stopped)
                return
        touch_task(cmd.task, cmd.uid)
        send({"id": cmd.rid, "ok": True, "result": result})
        # Only now may the keeper start shells again (see ShellPool.busy).
        POOL.running(-1)

    def shutdown(self):
        for cmd in list(self.commands.values()):
            procs.kill_group(cmd.proc.pid)


def settle(cmd, rc, result, stopped):
    """The reply: the result, or `disk_quota_exceeded` when the command took the task past it."""
    try:
        used = USAGE.measured(cmd.task, cmd.uid)
        # At the quota and grown by this command: its writes were cut (RLIMIT_FSIZE) even when
        # the shell carried on after them.
        over = used is not None and used >= quota() and used - (cmd.used_before or 0) > GROWTH_SLACK
        if stopped or rc == -signal.SIGXFSZ or over:
            shown = mb(used)
            send({
                "id": cmd.rid,
                "ok": False,
                "error": {
                    "code": "disk_quota_exceeded",
                    "message": "the command was stopped: the task's files reached %s, its disk quota is %s; delete files to go on (stderr: %s)"
                    % (shown, mb(quota()), result["stderr"][-300:].strip() or "none"),
                },
            })
            return
        touch_task(cmd.task, cmd.uid)
        send({"id": cmd.rid, "ok": True, "result": result})
    except Exception as e:  # noqa: BLE001 - the reply must go out
        send_error(cmd.rid, e)
    finally:
        POOL.running(-1)


def touch_task(task, uid):
    # The task directory's mtime is its last activity, which retention counts from.
    try:
        with as_task(uid):
            os.utime(os.path.join(identity.workspace_root(), task))
    except OSError:
        pass


def op_cancel(req):
    """Kills one running request's process group (the host aborted it)."""
    with procs_lock:
        entry = running.get(req["target"])
        if entry:
            _cancelled.add(req["target"])
    if entry:
        procs.kill_group(entry[1])
    return {"killed": 1 if entry else 0}


def op_cancel_task(req):
    """Kills everything the task runs: its commands, what they left in the background, what left
    their process group — every process of the task's uid."""
    task = req["task"]
    _, uid = identity.task_dir(task, create=False)
    with procs_lock:
        mine = [(rid, g) for rid, (t, g) in running.items() if t == task]
        for rid, _ in mine:
            _cancelled.add(rid)
    for _, g in mine:
        procs.kill_group(g)
    escaped = 0
    if uid is not None:
        POOL.forget(uid)
        escaped = procs.kill_uid(uid)
    return {"killed": len(mine), "escaped": escaped}


def busy_tasks():
    with procs_lock:
        return {t for (t, _) in running.values()}
