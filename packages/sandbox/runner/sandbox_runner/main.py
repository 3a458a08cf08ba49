"""The runner's entry: one long-lived process per container, started by the worker through a
single attached `docker exec` as root. It drops to its own uid at once (privs), then serves
requests: commands on the main thread's event loop (commands), file requests on threads of
their own (files, keep), cancels inline."""
import json
import os
import sys
import _thread

from . import identity, privs
from .commands import Loop, op_cancel, op_cancel_task
from .files import op_create_file, op_list_files, op_read_file
from .keep import op_cleanup, op_export, op_remove_task
from .proto import CONFIG, PROTOCOL, Refused, send, send_error
from .shells import POOL, SHELL, WAIT
from .starter import STARTER


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
    "remove-task": op_remove_task,
    "ping": op_ping,
}
# Ops that only signal processes run on the main thread (see Loop.dispatch).
INLINE_OPS = {"cancel", "cancel-task"}
# Ops after which the task is active: its directory's mtime (retention) and a warm shell.
TOUCHES_TASK = {"create-file", "read-file", "list-files"}


def handle(req):
    rid = req.get("id")
    try:
        fn = OPS.get(req.get("op"))
        if fn is None:
            raise Refused("invalid_action", "unknown op %r" % req.get("op"))
        result = fn(req)
        if req.get("op") in TOUCHES_TASK:
            _, uid = identity.task_dir(req["task"], create=False)
            if uid is not None:
                from .commands import touch_task

                touch_task(req["task"], uid)
                POOL.want(req["task"], uid)
        send({"id": rid, "ok": True, "result": result})
    except Exception as e:  # noqa: BLE001 - the runner must survive any single request
        send_error(rid, e)


def main():
    if len(sys.argv) > 1:
        CONFIG.update(json.loads(sys.argv[1]))
    try:
        caps = privs.drop_to_runner()
        identity.prepare()
    except Exception as e:  # noqa: BLE001 - reported to the host, which falls back to exec
        send({"id": 0, "ready": False, "protocol": PROTOCOL, "error": {"code": "runner_setup_failed", "message": str(e)}})
        return 3
    if POOL.enabled():
        if CONFIG["warmShells"] > 0:
            STARTER.begin(SHELL, WAIT)  # a fork: before the first thread
        _thread.start_new_thread(POOL.keeper, ())
    send({
        "id": 0,
        "ready": True,
        "protocol": PROTOCOL,
        "pid": os.getpid(),
        "uid": os.getuid(),
        "shell": SHELL,
        "capEff": "%016x" % caps["CapEff"],
        "capBnd": "%016x" % caps["CapBnd"],
    })
    loop = Loop(handle, INLINE_OPS)
    try:
        loop.run()
    finally:
        # stdin closed: the worker went away; its commands go with it.
        loop.shutdown()
        POOL.drain()
    return 0
