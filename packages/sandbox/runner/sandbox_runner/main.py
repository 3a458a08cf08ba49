"""The runner's entry: one long-lived process per container, started by the worker through a
single attached `docker exec`. Commands run on the main thread's event loop (commands), file
requests on threads of their own (files, keep), cancels inline."""
import _thread
import json
import os
import sys

from .commands import Loop, op_cancel, op_cancel_task, touch_task
from .files import op_create_file, op_list_files, op_read_file
from .keep import op_cleanup, op_export
from .proto import CONFIG, PROTOCOL, Refused, send, send_error
from .shells import POOL, SHELL


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
    loop = Loop(handle, INLINE_OPS)
    try:
        loop.run()
    finally:
        # stdin closed: the worker went away; its commands go with it.
        loop.shutdown()
        POOL.drain()
    return 0
