"""A real local Ray head node for the tests: ``ray start --head`` on 127.0.0.1, stopped at the
end — only the processes it started.

``ray stop`` would stop every Ray node of the machine, so it is not used: the head starts in a
session of its own (one process group holds its daemons), and stopping it signals that group
and every descendant of it (the workers the raylet starts in sessions of their own), by pid.
Every port it listens on is chosen free on 127.0.0.1 and its temporary folder is its own.
Ray turns 127.0.0.1 into the machine's outward address unless clustering across machines is
off (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``), which keeps everything on loopback.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.standalone_server import free_port

START_TIMEOUT_S = 180
STOP_GRACE_S = 5



def _descendants(roots: set[int]) -> set[int]:
    """``roots`` and every process below them (by parent pid), alive now."""
    parents: dict[int, int] = {}
    groups: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        parents[int(entry)] = int(fields[1])
        groups[int(entry)] = int(fields[2])
    found = {pid for pid in parents if pid in roots or groups.get(pid) in roots}
    while True:
        more = {pid for pid, parent in parents.items() if parent in found} - found
        if not more:
            return found
        found |= more


@dataclass
class RayHead:
    """A running head node: ``address`` is its job server (dashboard) URL."""

    address: str
    temp_dir: Path
    pgid: int
    env: dict = field(default_factory=dict)

    def stop(self) -> None:
        pids = _descendants({self.pgid})
        for signum in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids:
                try:
                    os.kill(pid, signum)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + STOP_GRACE_S
            while time.monotonic() < deadline:
                pids = {pid for pid in pids if _alive(pid)}
                if not pids:
                    break
                time.sleep(0.2)
            if not pids:
                break
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def start_ray_head(num_cpus: int = 2) -> RayHead:
    """Start a head node (with its dashboard, which serves the Jobs API); raises with Ray's
    output if it does not come up."""
    import requests

    temp_dir = Path(tempfile.mkdtemp(prefix="lt-ray-", dir="/tmp"))  # short: socket paths
    bin_dir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "LABTRACK_"))}
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",  # the jobs' `python` is this one
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
        RAY_USAGE_STATS_ENABLED="0",
        RAY_JOB_STOP_WAIT_TIME_S="3",
        PYTHONUNBUFFERED="1",
    )
    ports = {name: free_port() for name in (
        "port", "dashboard-port", "ray-client-server-port", "dashboard-agent-listen-port",
        "dashboard-agent-grpc-port", "metrics-export-port", "runtime-env-agent-port")}
    command = [str(bin_dir / "ray"), "start", "--head", "--node-ip-address", "127.0.0.1",
               "--dashboard-host", "127.0.0.1", "--include-dashboard", "true",
               "--num-cpus", str(num_cpus), "--num-gpus", "0",
               "--object-store-memory", "200000000", "--temp-dir", str(temp_dir),
               "--disable-usage-stats", "--log-style", "record"]
    for name, port in ports.items():
        command += [f"--{name}", str(port)]
    log = temp_dir / "ray-start.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    head = RayHead(f"http://127.0.0.1:{ports['dashboard-port']}", temp_dir, process.pid, env)
    try:
        code = process.wait(START_TIMEOUT_S)
        if code != 0:
            raise RuntimeError(f"ray start failed ({code}):\n{log.read_text()}")
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:  # the job server answers once the dashboard's modules are loaded
            try:
                if requests.get(f"{head.address}/api/version", timeout=5).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"Ray's job server did not answer:\n{log.read_text()}")
            time.sleep(0.5)
    except BaseException:
        head.stop()
        raise
    return head
