"""The shell starter: warm shells started by a process of their own, off the runner's CPU.

Starting a shell is a fork and an exec. From the runner — threaded, as large as its Python heap —
the fork copies its page tables while holding the GIL (Python cannot use vfork when the child
changes uid), and on a 2-CPU host it ran beside the next request: a short command's latency
doubled. The starter is forked from the runner at start, before any thread exists. It stays
single-threaded, runs at the runner's priority and holds only SETUID and SETGID. Each shell sets
itself to nice 19 before its exec (so a command is at 19 from its shell's first instruction, with
no `renice` to exec); the starter's own part stays at 0: at 19 it was woken late beside the host's
work after each command, and the next shell's start then ran into the next command (a tight loop
of `true`s took ~0.1 ms longer per command). It creates each shell with
clone(CLONE_PARENT), so the shell is the runner's own child, exactly as if the runner had forked
it: the runner waits for it, reads its exit status and kills its process group as before. The
shell's pipes and command memfd reach the runner over a Unix socket (SCM_RIGHTS).

When the starter cannot serve (an architecture whose clone number is not known here, a seccomp
profile refusing the flags, the starter gone), the caller starts the shell itself, as before.
"""
import array
import ctypes
import errno
import json
import os
import platform
import signal
import socket
import threading

from . import identity, privs
from .proto import log

_SYS_CLONE = {"x86_64": 56, "aarch64": 220}.get(platform.machine())
CLONE_PARENT = 0x00008000
PR_SET_NAME = 15
# The starter's name in /proc/<pid>/comm (its command line is the runner's: it is a fork of it).
NAME = b"research-shells"
_FDS = 4  # go (write end), the command memfd, stdout and stderr (read ends)

_unreaped = []  # shells dropped before they exited: reaped at the next start


def _exitcode(status):
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


class Shell:
    """A shell the starter created: a child of the runner, with the part of subprocess.Popen's
    interface the runner uses (pid, stdout, stderr, poll, wait)."""

    def __init__(self, pid, stdout, stderr):
        self.pid = pid
        self.stdout = stdout
        self.stderr = stderr
        self.returncode = None

    def _reap(self, flags):
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, flags)
            except ChildProcessError:
                # Not ours to wait for (never happens for a CLONE_PARENT child of the runner).
                self.returncode = 255
                return self.returncode
            if pid == self.pid:
                self.returncode = _exitcode(status)
        return self.returncode

    def poll(self):
        return self._reap(os.WNOHANG)

    def wait(self):
        return self._reap(0)

    def __del__(self):
        try:
            if self.poll() is None:
                _unreaped.append(self)
        except Exception:  # noqa: BLE001 - at interpreter shutdown
            pass


def _reap_dropped():
    for shell in list(_unreaped):
        if shell.poll() is not None:
            _unreaped.remove(shell)


class Starter:
    def __init__(self):
        self.sock = None
        self.pid = None
        self.lock = threading.Lock()

    def begin(self, shell, boot):
        """Forks the starter; on the main thread, before any other thread exists. `boot` is the
        warm shell's script, with {go} and {m} for the numbers of its two inherited fds."""
        if _SYS_CLONE is None:
            return
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            pid = os.fork()
        except OSError as e:
            log("no shell starter (fork: %s); shells start in the runner" % e)
            ours.close()
            theirs.close()
            return
        if pid == 0:
            code = 0
            try:
                ours.close()
                _serve(theirs, shell, boot)
            except BaseException as e:  # noqa: BLE001 - the starter must not return into the runner's code
                log("shell starter stopped: %r" % e)
                code = 1
            os._exit(code)
        theirs.close()
        self.sock = ours
        self.pid = pid

    def start(self, uid, home):
        """(shell, go write end, memfd) of a new warm shell of `uid`, or None when the starter
        cannot serve (the caller starts one itself). Raises OSError when the shell could not be
        created (no pid left): the caller's own attempt would fail the same way."""
        with self.lock:
            if self.sock is None:
                return None
            _reap_dropped()
            try:
                self.sock.send(json.dumps({"uid": uid, "home": home}).encode())
                msg, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(_FDS * 4), socket.MSG_CMSG_CLOEXEC)
            except OSError as e:
                log("shell starter unreachable (%s); shells start in the runner" % e)
                self._stop()
                return None
            fds = array.array("i")
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
            try:
                reply = json.loads(msg) if msg else {"fatal": True, "message": "it is gone"}
                pid = int(reply.get("pid", 0))
            except (ValueError, TypeError, AttributeError) as e:
                reply, pid = {"fatal": True, "message": "it answered %r (%s)" % (msg[:100], e)}, 0
            if pid <= 0 or len(fds) != _FDS:
                for fd in fds:
                    os.close(fd)
                if reply.get("fatal"):
                    log("shell starter cannot create shells (%s); shells start in the runner" % reply.get("message"))
                    self._stop()
                    return None
                raise OSError(reply.get("errno", errno.EIO), reply.get("message", "shell starter"))
            go, m, out, err = fds
            return Shell(pid, os.fdopen(out, "rb"), os.fdopen(err, "rb")), go, m

    def _stop(self):
        """No more shells from the starter: it is told to go (EOF), made to, and reaped."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.pid is not None:
            pid, self.pid = self.pid, None
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        _reap_dropped()

    def close(self):
        with self.lock:
            self._stop()


STARTER = Starter()


# The starter's side ----------------------------------------------------------------------------


def _serve(sock, shell, boot):
    # What a command must not inherit from the runner: its request and reply channel (stdin,
    # stdout) and any fd without CLOEXEC. stderr stays, for this process's own diagnostics.
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    keep = sock.fileno()
    os.closerange(3, keep)
    os.closerange(keep + 1, 1 << 16)
    # Python ignores these; a command gets the defaults, as subprocess gives its children.
    for sig in (signal.SIGPIPE, getattr(signal, "SIGXFSZ", None)):
        if sig is not None:
            signal.signal(sig, signal.SIG_DFL)
    name = ctypes.create_string_buffer(NAME)
    privs.prctl(PR_SET_NAME, ctypes.addressof(name))
    privs.capset((privs.CAP_SETGID, privs.CAP_SETUID))
    libc = ctypes.PyDLL(None, use_errno=True)  # keeps the GIL across the call: the child needs it
    libc.syscall.restype = ctypes.c_long
    libc.syscall.argtypes = [ctypes.c_long, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    while True:
        msg = sock.recv(65536)
        if not msg:
            return  # the runner is gone
        req = json.loads(msg)
        try:
            pid, fds = _create(libc, devnull, shell, boot, int(req["uid"]), req["home"])
        except OSError as e:
            fatal = e.errno in (errno.ENOSYS, errno.EINVAL, errno.EPERM)
            sock.send(json.dumps({"errno": e.errno, "message": str(e), "fatal": fatal}).encode())
            continue
        try:
            sock.sendmsg([json.dumps({"pid": pid}).encode()], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
        finally:
            for fd in fds:
                os.close(fd)


def _create(libc, devnull, shell, boot, uid, home):
    """Creates one warm shell of `uid`; returns its pid and the runner's ends of its fds."""
    if uid <= 0:
        raise OSError(errno.EPERM, "shells never run as root")
    opened = []
    try:
        m = os.memfd_create("research-command")
        opened.append(m)
        go_r, go_w = os.pipe()
        opened += [go_r, go_w]
        out_r, out_w = os.pipe()
        opened += [out_r, out_w]
        err_r, err_w = os.pipe()
        opened += [err_r, err_w]
        argv = [shell, "-c", boot.format(go=go_r, m=m)]
        env = identity.command_env(home)
        pid = libc.syscall(_SYS_CLONE, CLONE_PARENT | signal.SIGCHLD, 0, 0, 0, 0)
        if pid == 0:
            # The child: only system calls until exec (no thread exists, no lock is held).
            try:
                os.setpriority(os.PRIO_PROCESS, 0, 19)  # the command's priority, before its exec
                os.dup2(devnull, 0)
                os.dup2(out_w, 1)
                os.dup2(err_w, 2)
                os.set_inheritable(go_r, True)
                os.set_inheritable(m, True)
                os.setsid()  # its own session and process group: a timeout kills all of it
                privs.become(uid)
                os.chdir("/")
                os.execve(shell, argv, env)
            finally:
                os._exit(127)
        if pid < 0:
            e = ctypes.get_errno()
            raise OSError(e, "clone: %s" % os.strerror(e))
        for fd in (go_r, out_w, err_w):
            os.close(fd)
            opened.remove(fd)
        return pid, [go_w, m, out_r, err_r]
    except BaseException:
        for fd in opened:
            os.close(fd)
        raise
