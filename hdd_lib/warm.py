"""A warm process for pipeline stages: ``python -m hdd_lib notebook`` starts in a fraction of a second.

Each ``dvc repro`` stage is a fresh ``python -m hdd_lib notebook …``, and a short stage spends most of its time
importing torch, inductor, geoopt, pandas, matplotlib, IPython and papermill (5-8 s a stage on 2 cores,
measured: benchmarks/README.md). The first stage starts a server that imports those once; every stage is then
run by a child forked from it. The child takes the caller's working directory, environment, ``sys.path``,
arguments and standard streams (their file descriptors), imports ``hdd_lib`` afresh from disk, so results
follow the code, and runs the command; the caller forwards SIGINT/SIGTERM/SIGHUP to it and exits with its
status. The server keeps no state between stages, serves only its user (a private directory, peer credentials
checked), and exits after ``IDLE`` seconds without work or when what it imported could have changed (a new
key: Python, ``sys.path`` entries, import-time environment, this file). Linux only; ``HDD_WARM=0`` turns it off.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["run", "enabled", "servers", "stop", "IDLE"]

#: Seconds a server waits for work before it exits (``HDD_WARM_IDLE`` overrides).
IDLE = 120.0

#: Modules a server imports before forking (those missing are skipped). Nothing of ``hdd_lib``'s own code:
#: a child imports that from disk.
PRELOAD = ("numpy", "scipy.optimize", "scipy.special", "torch", "torch.nn.functional", "torch._dynamo",
           "torch._inductor.compile_fx", "torchvision", "geoopt", "ot", "sklearn.datasets", "pandas",
           "matplotlib.pyplot", "seaborn", "PIL.Image", "yaml", "ruamel.yaml", "tqdm", "IPython.display",
           "IPython.core.interactiveshell", "matplotlib_inline.backend_inline", "nbformat", "papermill")

#: Environment read when those modules load (thread pools, allocators, paths, encodings): part of the key.
_IMPORT_ENV = ("OMP_", "MKL_", "OPENBLAS_", "GOMP_", "KMP_", "TORCH", "PYTORCH", "CUDA", "LD_", "MALLOC_",
               "PYTHON", "MPL", "LANG", "LC_", "HDD_MALLOC", "XDG_CACHE_HOME", "HOME")

_ANSWER_TIMEOUT = 30.0   # seconds a caller waits for its child's pid
_START_TIMEOUT = 90.0    # seconds a caller waits for a new server to import


def enabled() -> bool:
    """Whether ``python -m hdd_lib notebook`` runs in a warm child (Linux; ``HDD_WARM=0``: never)."""
    return (os.environ.get("HDD_WARM", "1") not in ("0", "", "false", "no") and sys.platform.startswith("linux")
            and hasattr(os, "pidfd_open") and hasattr(socket, "send_fds") and "HDD_WARM_CHILD" not in os.environ)


def run(argv: list[str]) -> int | None:
    """Run ``python -m hdd_lib *argv`` in a child of the warm server and return its exit status; ``None``
    when no server can take it (then the caller runs the command itself)."""
    if not enabled():
        return None
    try:
        directory = _directory()
        path = directory / f"{_key()}.sock"
        if len(str(path)) > 100:  # AF_UNIX path limit
            return None
        sock = _connect(path) or _start(path)
        if sock is None:
            return None
    except OSError:
        return None
    with sock:
        return _submit(sock, argv)


def servers(directory: str | os.PathLike | None = None) -> dict[str, int]:
    """Running servers in ``directory`` (default: this user's): key -> process id."""
    directory = Path(directory) if directory else _directory()
    found = {}
    for pid_file in directory.glob("*.pid"):
        try:
            pid = int(pid_file.read_text())
            os.kill(pid, 0)
        except (ValueError, OSError):
            continue
        found[pid_file.stem] = pid
    return found


def stop(directory: str | os.PathLike | None = None) -> int:
    """Ask every server in ``directory`` (default: this user's) to stop once its running stages finish;
    return how many were asked."""
    asked = 0
    for pid in servers(directory).values():
        try:
            os.kill(pid, signal.SIGTERM)
            asked += 1
        except OSError:
            pass
    return asked


# --- the caller's side --------------------------------------------------------------------------------------

def _directory() -> Path:
    """This user's private folder for server sockets (``HDD_WARM_DIR`` overrides)."""
    path = Path(os.environ.get("HDD_WARM_DIR") or Path(tempfile.gettempdir()) / f"hdd-warm-{os.getuid()}")
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = path.stat()
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise PermissionError(f"{path} is not private to this user")
    return path


def _key() -> str:
    """What the server's imports depend on: the interpreter, ``sys.path`` (entries and their modification
    times, which change when packages are installed), import-time environment and this file."""
    h = hashlib.sha256()
    for part in (sys.executable, sys.version, *sys.path[1:]):
        h.update(part.encode() + b"\0")
        try:
            h.update(str(os.stat(part).st_mtime_ns).encode())
        except OSError:
            pass
    for name in sorted(os.environ):
        if name.startswith(_IMPORT_ENV):
            h.update(f"{name}={os.environ[name]}\0".encode())
    h.update(Path(__file__).read_bytes())
    return h.hexdigest()[:20]


def _connect(path: Path) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
        return sock
    except OSError:
        sock.close()
        return None


def _start(path: Path) -> socket.socket | None:
    """Start a server for ``path`` (its own session; output appended to ``<key>.log``); connect once it listens.
    A server that finds another holding the key's lock exits at once (status 0); if that other one was
    exiting itself, nobody would listen, so a new server is started again a second later."""
    deadline = time.monotonic() + _START_TIMEOUT
    server, started = None, 0.0
    while time.monotonic() < deadline:
        sock = _connect(path)
        if sock is not None:
            return sock
        if server is None or (server.poll() == 0 and time.monotonic() - started > 1.0):
            with open(path.with_suffix(".log"), "ab") as log:
                server = subprocess.Popen([sys.executable, "-m", "hdd_lib.warm", str(path)],
                                          stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                          start_new_session=True, close_fds=True)
            started = time.monotonic()
        elif server.poll() not in (None, 0):  # it failed: run the command without a server
            return None
        time.sleep(0.05)
    return None


def _submit(sock: socket.socket, argv: list[str]) -> int | None:
    request = json.dumps({"argv": [sys.argv[0], *argv], "cwd": os.getcwd(), "env": dict(os.environ),
                          "path": sys.path, "umask": _umask()}).encode()
    answers = sock.makefile("rb")
    try:
        socket.send_fds(sock, [struct.pack("!I", len(request))], [0, 1, 2])
        sock.sendall(request)
        sock.settimeout(_ANSWER_TIMEOUT)
        pid = json.loads(answers.readline())["pid"]
    except (OSError, ValueError, KeyError):
        return None  # nothing ran: the caller runs the command itself
    sock.settimeout(None)

    def forward(signum, frame):
        try:
            os.killpg(pid, signum)
        except OSError:
            pass
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)
    try:
        code = json.loads(answers.readline())["exit"]
    except (OSError, ValueError, KeyError):
        print("error: the warm server lost this stage; rerun it (HDD_WARM=0: without the server)", file=sys.stderr)
        return 1
    return code if code >= 0 else 128 - code


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# --- the server ---------------------------------------------------------------------------------------------

def serve(path: Path) -> None:
    """Listen on ``path`` until idle; fork a child per request (see the module docstring)."""
    import fcntl

    lock = open(path.with_suffix(".lock"), "a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return  # another server for this key holds the lock
    os.close(os.pidfd_open(os.getpid()))  # fails early on kernels without pidfds
    for name in PRELOAD:
        try:
            __import__(name)
        except Exception:  # noqa: BLE001 -- an optional module, or one that cannot load here: a child imports it
            pass
    path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    os.chmod(path, 0o600)
    listener.listen(64)
    inode = path.stat().st_ino
    path.with_suffix(".pid").write_text(str(os.getpid()))
    idle = float(os.environ.get("HDD_WARM_IDLE", IDLE))
    children: dict[int, tuple[int, socket.socket]] = {}   # pidfd -> (pid, connection)
    orphans: dict[int, float] = {}                         # pidfd -> when to SIGKILL (its caller hung up)
    last = time.monotonic()
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))  # finish the running stages, take no more
    try:
        while children or not stopping:
            if stopping and listener.fileno() != -1:
                _unlink(path, inode)
                listener.close()
            hung_up = {children[fd][1] for fd in orphans}
            watched = [*([listener] if listener.fileno() != -1 else []), *children,
                       *(conn for _, conn in children.values() if conn not in hung_up)]
            try:
                ready, _, _ = select.select(watched, [], [], 1.0)
            except InterruptedError:
                continue
            for item in ready:
                if item is listener:
                    _accept(listener, lock, children)
                elif isinstance(item, int):  # a child exited
                    pid, conn = children.pop(item)
                    _answer(conn, {"exit": os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])})
                    conn.close()
                    os.close(item)
                    orphans.pop(item, None)
                    last = time.monotonic()
                else:  # a caller hung up before its child finished: stop the child
                    for fd, (pid, conn) in children.items():
                        if conn is item and fd not in orphans:
                            _kill(pid, signal.SIGTERM)
                            orphans[fd] = time.monotonic() + 10
            for fd, when in orphans.items():
                if time.monotonic() > when:
                    _kill(children[fd][0], signal.SIGKILL)
            if not children and (time.monotonic() - last > idle or not _owns(path, inode)):
                break  # idle, or the socket was removed or replaced (another server serves this key)
    finally:
        _unlink(path, inode)
        listener.close()


def _owns(path: Path, inode: int) -> bool:
    try:
        return path.stat().st_ino == inode
    except FileNotFoundError:
        return False


def _unlink(path: Path, inode: int) -> None:
    if _owns(path, inode):
        path.unlink(missing_ok=True)
        path.with_suffix(".pid").unlink(missing_ok=True)


def _kill(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except OSError:
        pass


def _answer(conn: socket.socket, message: dict) -> None:
    try:
        conn.sendall(json.dumps(message).encode() + b"\n")
    except OSError:
        pass


def _accept(listener: socket.socket, lock, children: dict) -> None:
    conn, _ = listener.accept()
    fds: list[int] = []
    try:
        uid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))[1]
        if uid != os.getuid():
            raise PermissionError("caller is another user")
        conn.settimeout(10)
        header, fds, _, _ = socket.recv_fds(conn, 4, 3)
        header += _read(conn, 4 - len(header))
        request = json.loads(_read(conn, struct.unpack("!I", header)[0]))
        conn.settimeout(None)
        if len(fds) != 3:
            raise ValueError("expected the caller's stdin, stdout and stderr")
    except (OSError, ValueError, struct.error):
        for fd in fds:
            os.close(fd)
        conn.close()
        return
    pid = os.fork()
    if pid == 0:
        _child(request, fds, close=[listener.fileno(), conn.fileno(), lock.fileno(), *children,
                                    *(c.fileno() for _, c in children.values())])
    for fd in fds:
        os.close(fd)
    children[os.pidfd_open(pid)] = (pid, conn)
    _answer(conn, {"pid": pid})


def _read(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise ValueError("caller hung up")
        data += chunk
    return data


def _child(request: dict, fds: list[int], close: list[int]) -> None:
    """Become the caller's command: its streams, directory, environment and arguments; a fresh ``hdd_lib``."""
    code = 1
    try:
        os.setpgid(0, 0)  # the caller signals this group (the child and what it starts)
        for fd in close:
            try:
                os.close(fd)
            except OSError:
                pass
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.chdir(request["cwd"])
        os.umask(request["umask"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ["HDD_WARM_CHILD"] = "1"
        sys.path[:] = request["path"]
        sys.argv[:] = request["argv"]
        _fresh_streams()
        _reseed()
        for name in [m for m in sys.modules if m == "hdd_lib" or m.startswith("hdd_lib.")]:
            del sys.modules[name]
        from hdd_lib.cli import main
        code = main(request["argv"][1:])
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except KeyboardInterrupt:
        code = 130
    except BaseException:  # noqa: BLE001 -- reported on the caller's stderr, as an uncaught error would be
        import traceback
        traceback.print_exc()
    finally:
        try:
            import atexit
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _fresh_streams() -> None:
    """``sys.stdin/stdout/stderr`` over the caller's descriptors, buffered as a new process buffers them."""
    import io
    encoding, errors = sys.__stdout__.encoding if sys.__stdout__ else "utf-8", "strict"
    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        raw = io.FileIO(fd, "r" if fd == 0 else "w", closefd=False)
        tty = raw.isatty()
        if fd == 0:
            stream = io.TextIOWrapper(io.BufferedReader(raw), encoding=encoding, errors=errors)
        else:
            stream = io.TextIOWrapper(io.BufferedWriter(raw), encoding=encoding,
                                      errors="backslashreplace" if fd == 2 else errors,
                                      line_buffering=tty or fd == 2)
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)


def _reseed() -> None:
    """Random state a new process would have: Python's and numpy's global generators from OS entropy."""
    import random
    random.seed()
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
