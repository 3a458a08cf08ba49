"""Starting commands: pre-started shells, and posix_spawn without the GIL."""
import os
import signal
import subprocess
import threading
import time

from .paths import workspace_root
from .procs import kill_group
from .proto import CONFIG

SHELL = "/bin/bash" if os.access("/bin/bash", os.X_OK) else "/bin/sh"

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


def _exit_code(status):
    # The stdlib has this from python 3.9 on only.
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


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
                self.returncode = _exit_code(status)
        return self.returncode

    def wait(self):
        if self.returncode is None:
            _, status = os.waitpid(self.pid, 0)
            self.returncode = _exit_code(status)
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
