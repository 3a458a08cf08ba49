"""Starting commands, each as its task's uid.

Starting bash costs ~1.2 ms of exec and initialisation, most of a short command's latency. The
pool keeps a shell already started for each recently active task — as the task's uid, in its own
session, stdout/stderr piped — blocked on a one-byte "go" pipe. A command is written to a memfd
the shell inherited (a regular file: bash's `read` takes it in buffered chunks, where a pipe is
read one byte per syscall), then "go" is sent; the shell sets the file-size limit, cds into the
task's directory and evals the command, which never appears in any process's argv. The one
observable difference from a fresh `bash -c`: $LINENO inside multi-line commands.

Shells are kept ready only for a task that has started a command before: the shell started
after a task's last command is killed unused when it ends, and a task of one command would pay
for two shells. The shell starter (starter.py, a process of its own) starts every
shell: the keeper thread's, off the command's path, and the one a command starts for itself
when none is ready (the starter's fork costs a fraction of the threaded runner's, and holds no
GIL of the runner's). When the starter cannot serve, the runner starts them itself.

subprocess switches the child's uid and groups in C between fork and exec (no Python runs in
the child of this threaded process); the child inherits the runner's empty bounding set, and
the uid change from the runner's to the task's leaves it no capability after exec.
"""
import os
import subprocess
import sys
import threading
import time
from collections import OrderedDict

from . import identity, privs, procs
from .proto import CONFIG
from .starter import STARTER

SHELL = "/bin/bash" if os.access("/bin/bash", os.X_OK) else "/bin/sh"
QUIET_S = 0.02
# Tasks that acted within this window count as active. When more are active than shells are
# kept for (warmTasks), each new one would evict another's shells before they are used, so
# none is started ahead: a command then starts its own (one start per command, where thrashing
# cost two unused ones per action).
ACTIVE_S = 2.0
# Tasks whose commands are counted (see ShellPool.want), at most: the least recent are forgotten.
COUNTED_TASKS = 4096

# Commands run at the lowest CPU priority (nice 19, inherited by all they start), the runner
# at its own: within the container's CPU budget a fork bomb's hundreds of processes then
# cannot starve the runner that has to kill them (an incident: on a loaded machine, kill sweeps
# at equal priority got under 1 % of the container's CPU and the bomb outlived its task). The
# warm shell renices itself before it waits, off the command's path.
_NICE = "renice -n 19 -p $$ >/dev/null 2>&1; "
# The warm shell: waits for "go", then reads its command from the memfd. The shell starter's
# shells are at nice 19 from the start and skip the renice.
WAIT = (
    "read -r -n 1 -u {go} __research_go || exit 0; exec {go}<&-; "
    "IFS= read -r -d '' -u {m} __research_cwd; IFS= read -r -d '' -u {m} __research_fsize; "
    "IFS= read -r -d '' -u {m} __research_cmd; exec {m}<&-; "
    'umask 077; ulimit -f "$__research_fsize" || exit 126; '
    'cd -- "$__research_cwd" || exit 126; unset __research_go __research_cwd __research_fsize OLDPWD; '
    'BASH_EXECUTION_STRING=$__research_cmd; eval "unset __research_cmd; $__research_cmd"'
)
_BOOT = _NICE + WAIT
# Without bash: no pre-started shells, and the command is an argument (visible in ps).
_SH_BOOT = _NICE + 'umask 077; ulimit -f "$2" || exit 126; cd -- "$1" || exit 126; eval "$3"'


def _ids(uid):
    if sys.version_info >= (3, 9):
        return {"user": uid, "group": uid, "extra_groups": []}

    # python 3.8: no user/group arguments yet
    return {"preexec_fn": lambda: privs.become(uid)}


def _env(task, uid):
    return identity.command_env(identity.task_home(task, uid))


def fsize_limit(budget):
    """`ulimit -f` argument for a budget in bytes (bash counts 1024-byte blocks, sh 512)."""
    if budget is None:
        return "unlimited"
    return str(budget // (1024 if SHELL == "/bin/bash" else 512))


class ShellPool:
    def __init__(self):
        self.cond = threading.Condition()
        self.ready = {}  # uid -> [(proc, go_w, memfd), ...]
        self.wanted = OrderedDict()  # uid -> task, most recently active last
        self.active = OrderedDict()  # uid -> when the task last acted, most recent last
        self.spawning = {}  # uid -> shells being started
        self.commands = OrderedDict()  # uid -> commands started, most recent last (bounded)
        # Commands running now, and when the last one started: starting a shell (a fork and an
        # exec) beside a command that just started competes with it for the container's CPU and
        # the GIL, so the keeper waits until none runs or the last has run for QUIET_S.
        self.busy = 0
        self.last_start = 0.0

    def enabled(self):
        return SHELL == "/bin/bash" and hasattr(os, "memfd_create")

    def new_shell(self, task, uid):
        """A new shell of the task's uid, waiting for its command: from the starter, off the
        runner's CPU (see starter.py), or from the runner itself when the starter cannot serve."""
        return STARTER.start(uid, identity.task_home(task, uid)) or self.start(task, uid)

    def start(self, task, uid):
        """A started shell of the task's uid, waiting for its command, forked by the runner."""
        m = os.memfd_create("research-command")
        r, w = os.pipe()
        try:
            proc = subprocess.Popen(
                [SHELL, "-c", _BOOT.format(go=r, m=m)],
                cwd="/",
                env=_env(task, uid),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(r, m),
                start_new_session=True,
                **_ids(uid)
            )
        except BaseException:
            os.close(w)
            os.close(m)
            raise
        finally:
            os.close(r)
        return proc, w, m

    def want(self, task, uid, command=False):
        """The task is active (`command`: it started a command): keep shells of its uid ready (the
        least recent task loses its own) once it has started a command before, unless more tasks
        are active than shells are kept for (see ACTIVE_S)."""
        if not self.enabled() or CONFIG["warmShells"] <= 0:
            return
        with self.cond:
            now = time.monotonic()
            self.active.pop(uid, None)
            self.active[uid] = now
            while self.active and next(iter(self.active.values())) < now - ACTIVE_S:
                self.active.popitem(last=False)
            started = self.commands.pop(uid, 0) + (1 if command else 0)
            self.commands[uid] = started
            while len(self.commands) > COUNTED_TASKS:
                self.commands.popitem(last=False)
            if started < 2 and uid not in self.wanted:
                return
            if uid not in self.wanted and len(self.active) > CONFIG["warmTasks"]:
                return
            self.wanted.pop(uid, None)
            self.wanted[uid] = task
            while len(self.wanted) > CONFIG["warmTasks"]:
                old, _ = self.wanted.popitem(last=False)
                for shell in self.ready.pop(old, []):
                    self._discard(shell)
            self.cond.notify_all()

    def take(self, uid):
        """A ready shell of the task's uid, or None (the caller starts one)."""
        with self.cond:
            if not self.ready.get(uid) and self.spawning.get(uid):
                # A shell that is half started is ready sooner than a new one.
                self.cond.wait_for(lambda: self.ready.get(uid), timeout=0.005)
            shells = self.ready.get(uid)
            # The keeper is not woken here: it starts the next shell once the command is over.
            return shells.pop(0) if shells else None

    def forget(self, uid):
        """The task's processes were killed (cancel-task): its shells are gone, none is started."""
        with self.cond:
            self.wanted.pop(uid, None)
            self.active.pop(uid, None)
            self.commands.pop(uid, None)
            for shell in self.ready.pop(uid, []):
                self._discard(shell)

    def idle_pids(self):
        with self.cond:
            return {shell[0].pid for shells in self.ready.values() for shell in shells}

    def _hold(self):
        """Seconds the keeper should still wait for a quiet moment (0: none)."""
        if self.busy == 0:
            return 0.0
        return max(0.0, QUIET_S - (time.monotonic() - self.last_start))

    def _missing(self):
        hold = self._hold() > 0
        for uid in reversed(self.wanted):
            have = len(self.ready.get(uid, ())) + self.spawning.get(uid, 0)
            # A task with no shell at all (its first command is starting one itself) gets one at
            # once; topping up waits for the quiet.
            if have == 0 or (have < CONFIG["warmShells"] and not hold):
                return uid
        return None

    def running(self, delta):
        with self.cond:
            self.busy += delta
            if delta > 0:
                self.last_start = time.monotonic()
            elif self.busy == 0:
                self.cond.notify_all()

    def keeper(self):
        """Keeps a shell ready for each wanted uid, on its own thread."""
        while True:
            with self.cond:
                while self._missing() is None:
                    # Woken by want() and by the last command ending; else when the quiet comes.
                    self.cond.wait(self._hold() or None)
                uid = self._missing()
                task = self.wanted[uid]
                self.spawning[uid] = self.spawning.get(uid, 0) + 1
            shell = None
            try:
                shell = self.new_shell(task, uid)
            except (OSError, subprocess.SubprocessError):
                pass
            with self.cond:
                self.spawning[uid] -= 1
                if not self.spawning[uid]:
                    del self.spawning[uid]
                if shell and self.wanted.get(uid) == task:
                    self.ready.setdefault(uid, []).append(shell)
                else:
                    self._discard(shell)
                self.cond.notify_all()
            if shell is None:
                time.sleep(0.2)  # no pid left (a fork bomb?): commands start their own shells

    def _discard(self, shell):
        if not shell:
            return
        proc, w, m = shell
        # Closing "go" makes the waiting shell exit; subprocess (or starter.Shell) reaps it later.
        for fd in (w, m):
            try:
                os.close(fd)
            except OSError:
                pass
        proc.stdout.close()
        proc.stderr.close()

    def run(self, shell, cwd, fsize, command):
        proc, w, m = shell
        try:
            payload = cwd.encode("utf-8", "surrogateescape") + b"\0" + fsize.encode() + b"\0" + command + b"\0"
            view = memoryview(payload)
            while view:
                view = view[os.write(m, view) :]
            os.lseek(m, 0, os.SEEK_SET)  # the shell shares this offset
            os.write(w, b"g")
            return proc
        except OSError:
            procs.kill_group(proc.pid)
            proc.wait()
            proc.stdout.close()
            proc.stderr.close()
            return None
        finally:
            os.close(w)
            os.close(m)

    def drain(self):
        with self.cond:
            shells = [shell for shells in self.ready.values() for shell in shells]
            self.ready = {}
            self.wanted.clear()
            self.active.clear()
        for shell in shells:
            self._discard(shell)
            shell[0].wait()
        STARTER.close()


POOL = ShellPool()


def spawn_command(task, uid, cwd, budget, command):
    """Starts `command` (bytes) in `cwd` as the task's uid, with at most `budget` bytes per file."""
    fsize = fsize_limit(budget)
    if POOL.enabled():
        shell = POOL.take(uid)
        if shell is None:
            shell = POOL.new_shell(task, uid)
        proc = POOL.run(shell, cwd, fsize, command)
        if proc is not None:
            return proc
        proc = POOL.run(POOL.start(task, uid), cwd, fsize, command)
        if proc is not None:
            return proc
    return subprocess.Popen(
        [SHELL, "-c", _SH_BOOT, "sh", cwd, fsize, command],
        cwd="/",
        env=_env(task, uid),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # own process group: a timeout kills all of it
        **_ids(uid)
    )
