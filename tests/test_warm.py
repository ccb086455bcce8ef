"""hdd_lib.warm: stages run in children of a warm server, exactly as they run on their own."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from hdd_lib import warm
from hdd_lib.deps import PACKAGE_DIR

from .test_notebook import notebook

pytestmark = pytest.mark.skipif(not warm.enabled() and os.environ.get("HDD_WARM") not in ("0", ""),
                                reason="no warm server on this platform")

PROBE = ("import os, sys, hdd_lib\n"
         "print('pid', os.getpid(), 'parent', os.getppid(), 'version', hdd_lib.__version__, 'x', x)\n"
         "print('cwd', os.getcwd(), 'env', os.environ.get('PROBE_ENV'))\n"
         "print('to stderr', file=sys.stderr)")


@pytest.fixture
def home(monkeypatch):
    """A private server directory (short: socket paths are limited) and a copy of hdd_lib to edit."""
    root = Path(tempfile.mkdtemp(prefix="hw", dir="/tmp"))
    (root / "servers").mkdir(mode=0o700)
    shutil.copytree(PACKAGE_DIR, root / "code" / "hdd_lib", ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setenv("HDD_WARM_DIR", str(root / "servers"))
    monkeypatch.setenv("HDD_WARM_IDLE", "30")
    monkeypatch.setenv("PYTHONPATH", str(root / "code"))
    monkeypatch.delenv("HDD_WARM", raising=False)
    yield root
    warm.stop(root / "servers")
    shutil.rmtree(root, ignore_errors=True)


def hdd(home, *args, env=None, **kw):
    return subprocess.run([sys.executable, "-m", "hdd_lib", *map(str, args)], capture_output=True, text=True,
                          cwd=home, env={**os.environ, **(env or {})}, **kw)


def printed(path):
    cells = json.loads(Path(path).read_text())["cells"]
    return "".join("".join(o.get("text", "")) for c in cells for o in c.get("outputs", []))


def test_a_stage_runs_in_a_child_of_one_server_with_the_callers_setting_and_output(home):
    src = notebook(home / "probe.ipynb", [PROBE], "x = 1")
    runs = [hdd(home, "notebook", src, home / f"out{i}.ipynb", "-p", "x", i, env={"PROBE_ENV": f"e{i}"})
            for i in range(2)]
    local = hdd(home, "notebook", src, home / "local.ipynb", "-p", "x", 1, env={"PROBE_ENV": "e1", "HDD_WARM": "0"})
    assert all(r.returncode == 0 for r in [*runs, local]), [r.stderr for r in runs]
    shown = [printed(home / f"out{i}.ipynb").split() for i in range(2)]
    parents = {s[s.index("parent") + 1] for s in shown}
    assert len(parents) == 1 and len({s[1] for s in shown}) == 2  # one server, a child per stage
    assert (shown[1][shown[1].index("x") + 1], shown[1][shown[1].index("env") + 1]) == ("1", "e1")
    assert f"cwd {home}" in printed(home / "out1.ipynb")
    strip = lambda text: [line for line in text.splitlines() if not line.startswith("pid ")]  # noqa: E731
    assert strip(printed(home / "out1.ipynb")) == strip(printed(home / "local.ipynb"))
    assert len(list((home / "servers").glob("*.sock"))) == 1


def test_an_edit_to_hdd_lib_shows_in_the_next_stage(home):
    src = notebook(home / "probe.ipynb", [PROBE], "x = 1")
    assert hdd(home, "notebook", src, home / "a.ipynb").returncode == 0
    init = home / "code" / "hdd_lib" / "__init__.py"
    with open(init, "r+") as f:  # edited in place: the folder's time stamp (part of the server key) stays
        text = f.read().replace('__version__ = "0.1.0"', '__version__ = "9.9.9"')
        f.seek(0), f.write(text), f.truncate()
    assert hdd(home, "notebook", src, home / "b.ipynb").returncode == 0
    a, b = printed(home / "a.ipynb").split(), printed(home / "b.ipynb").split()
    assert a[a.index("parent") + 1] == b[b.index("parent") + 1]  # the same server ...
    assert a[a.index("version") + 1] == "0.1.0" and b[b.index("version") + 1] == "9.9.9"  # ... the new code


def test_errors_reach_the_callers_stderr_with_the_exit_status(home):
    src = notebook(home / "bad.ipynb", ["raise ValueError('distill.ipc must be >= 1, got 0')"], "x = 1")
    r = hdd(home, "notebook", src, home / "out.ipynb")
    assert r.returncode == 2 and r.stderr.strip() == "error: ValueError: distill.ipc must be >= 1, got 0 (in cell 2)"
    assert r.stdout == ""


def test_ctrl_c_reaches_the_stage_and_a_killed_caller_stops_it(home):
    src = notebook(home / "slow.ipynb", ["import os, time\nopen('pid', 'w').write(str(os.getpid()))",
                                          "print('started', flush=True)\ntime.sleep(60)"], "x = 1")
    caller = subprocess.Popen([sys.executable, "-m", "hdd_lib", "notebook", str(src), str(home / "out.ipynb")],
                              cwd=home, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    child = wait_for_pid(home / "pid")
    time.sleep(1)
    caller.send_signal(signal.SIGINT)
    assert caller.wait(timeout=30) == 130
    assert "KeyboardInterrupt" in (home / "out.ipynb").read_text() and not alive(child)
    (home / "pid").unlink()
    caller = subprocess.Popen([sys.executable, "-m", "hdd_lib", "notebook", str(src), str(home / "out2.ipynb")],
                              cwd=home, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    child = wait_for_pid(home / "pid")
    caller.kill()
    deadline = time.monotonic() + 15
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(child), "the stage outlived its killed caller"


def test_an_idle_server_exits_and_stop_ends_a_running_one(home, monkeypatch):
    monkeypatch.setenv("HDD_WARM_IDLE", "1")
    assert hdd(home, "notebook", notebook(home / "a.ipynb", ["1"], "x = 1"), home / "out.ipynb").returncode == 0
    deadline = time.monotonic() + 15
    while list((home / "servers").glob("*.sock")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not list((home / "servers").glob("*.sock"))
    monkeypatch.setenv("HDD_WARM_IDLE", "60")
    assert hdd(home, "notebook", notebook(home / "a.ipynb", ["1"], "x = 1"), home / "out.ipynb").returncode == 0
    assert warm.stop(home / "servers") == 1
    deadline = time.monotonic() + 15
    while list((home / "servers").glob("*.sock")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not list((home / "servers").glob("*.sock"))


def test_the_warm_command_lists_and_stops_the_servers(home):
    assert hdd(home, "warm").stdout.strip() == "no warm server running"
    assert hdd(home, "notebook", notebook(home / "a.ipynb", ["1"], "x = 1"), home / "out.ipynb").returncode == 0
    (key, pid), = warm.servers(home / "servers").items()
    assert hdd(home, "warm").stdout.strip() == f"{key}: pid {pid}"
    assert hdd(home, "warm", "--stop").stdout.strip() == "asked 1 warm server(s) to stop"
    deadline = time.monotonic() + 15
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(pid)


def test_a_server_that_lost_the_lock_to_an_exiting_one_is_started_again(tmp_path, monkeypatch):
    """The server holding a key's lock may be exiting (idle) just as a new one starts: the new one exits
    (status 0, lock taken), nobody listens, and the caller starts another a second later."""
    spawned = []

    class Server:  # the first exits at once (lost the lock), the second listens
        def __init__(self, *args, **kwargs):
            spawned.append(time.monotonic())

        def poll(self):
            return 0 if len(spawned) == 1 else None

    listening = object()
    monkeypatch.setattr(warm.subprocess, "Popen", Server)
    monkeypatch.setattr(warm, "_connect", lambda path: listening if len(spawned) == 2 else None)
    assert warm._start(tmp_path / "key.sock") is listening
    assert len(spawned) == 2 and spawned[1] - spawned[0] >= 1.0


def test_a_failed_server_start_runs_the_stage_without_one(tmp_path, monkeypatch):
    class Server:
        def __init__(self, *args, **kwargs):
            pass

        def poll(self):
            return 1

    monkeypatch.setattr(warm.subprocess, "Popen", Server)
    monkeypatch.setattr(warm, "_connect", lambda path: None)
    t0 = time.monotonic()
    assert warm._start(tmp_path / "key.sock") is None and time.monotonic() - t0 < 5


def test_a_shared_server_directory_is_refused(home, monkeypatch):
    os.chmod(home / "servers", 0o777)
    r = hdd(home, "notebook", notebook(home / "p.ipynb", [PROBE], "x = 1"), home / "out.ipynb")
    os.chmod(home / "servers", 0o700)
    assert r.returncode == 0 and not list((home / "servers").glob("*.sock"))  # ran on its own, no server


def wait_for_pid(path, timeout=60):
    deadline = time.monotonic() + timeout
    while not (path.is_file() and path.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return int(path.read_text())


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is not alive
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] != "Z"
    except OSError:
        return False
