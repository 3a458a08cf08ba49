"""The line protocol and the runner's configuration.

Requests:  {"id": N, "op": "<op>", ...}, one per stdin line.
Replies:   {"id": N, "ok": true, "result": {...}} | {"id": N, "ok": false, "error": {"code", "message"}}
Live output of an execute-command that asked for it (`live`), before its reply:
           {"id": N, "output": {"stream": "stdout"|"stderr", "chunk": "...", "truncated"?: true}}
The first line written is {"id": 0, "ready": true, "protocol": PROTOCOL, ...} — or, when the
runner cannot set itself up, {"id": 0, "ready": false, "protocol": PROTOCOL, "error": {...}}.
stdout belongs to the protocol; diagnostics go to stderr.
"""
import json
import sys
import threading

# Bump on any change of requests, replies or the ready line; the host refuses another version.
PROTOCOL = 5

CONFIG = {
    "workspace": "/workspace",
    "maxOutputBytes": 64 * 1024,
    "maxReadBytes": 1024 * 1024,
    "listMaxEntries": 1000,
    "listMaxDepth": 8,
    # Pre-started shells (each runs as its task's uid): this many for each of the most recently
    # active tasks. Two: a used one is started again once its command is over, and the task's
    # next command may come sooner than that (a queue hop is a few milliseconds).
    "warmShells": 2,
    "warmTasks": 4,
    # The runner's own identity, and the range task uids are allocated from (no passwd entries).
    "runnerUid": 99999,
    "taskUidFirst": 100000,
    "taskUidCount": 900000,
    # Per-task disk quota over /workspace/<task> and the task's home; 0 = none.
    "taskDiskBytes": 0,
    # Bounds of the export reply: files listed, and the bytes of their names.
    "exportMaxFiles": 5000,
    "exportMaxNameBytes": 128 * 1024,
}

_out_lock = threading.Lock()
_out = sys.stdout.buffer


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


def error_of(e):
    if isinstance(e, Refused):
        return {"code": e.code, "message": e.message}
    if isinstance(e, KeyError):
        return {"code": "invalid_action", "message": "missing field %s" % e}
    if isinstance(e, PermissionError):
        return {"code": "permission_denied", "message": "%s: %s" % (e.strerror, e.filename)}
    if isinstance(e, OSError):
        if e.errno == 27:  # EFBIG
            return {"code": "disk_quota_exceeded", "message": "%s: %s" % (e.strerror, e.filename)}
        return {"code": "io_error", "message": "%s: %s" % (e.strerror, e.filename)}
    log("request failed:", repr(e))
    return {"code": "runner_error", "message": repr(e)}


def send_error(rid, e):
    send({"id": rid, "ok": False, "error": error_of(e)})
