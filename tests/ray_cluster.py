"""A real Ray cluster on this machine for tests and benchmarks: a head without CPUs, N one-CPU worker nodes.

Each worker node is its own `ray start --block` process in its own session, so killing that
session is losing the node. Every process shares a fresh token (Ray's token authentication).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RAY = str(Path(sys.executable).parent / "ray")


def cluster_env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0", "TF_CPP_MIN_LOG_LEVEL": "2",
            "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpus(address: str, env: dict) -> float:
    out = subprocess.run([RAY, "status", "--address", address], capture_output=True, text=True, env=env,
                         timeout=60).stdout
    for line in out.splitlines():  # " 0.0/2.0 CPU"
        if line.strip().endswith(" CPU") and "/" in line:
            return float(line.split("/")[1].split()[0])
    return 0.0


@contextmanager
def local_cluster(workers: int = 2, env: dict | None = None):
    """(address, env, worker node processes) of a cluster that is stopped on exit."""
    env = env or cluster_env()
    port = free_port()
    address = f"127.0.0.1:{port}"
    subprocess.run([RAY, "start", "--head", "--port", str(port), "--num-cpus", "0", "--include-dashboard=false",
                    "--disable-usage-stats"], check=True, env=env, capture_output=True, timeout=180)
    logs = tempfile.mkdtemp(prefix="ekspresi-ray-nodes-")
    nodes = []
    try:
        # One node after the other: two raylets starting at once on one machine can pick the same port.
        for i in range(workers):
            nodes.append(subprocess.Popen([RAY, "start", "--address", address, "--num-cpus", "1", "--block"], env=env,
                                          stdout=open(Path(logs) / f"node{i}.log", "w"), stderr=subprocess.STDOUT,
                                          start_new_session=True))
            deadline = time.monotonic() + 90
            while cpus(address, env) < i + 1:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"worker node {i} did not join the Ray head at {address} (its output: {logs})")
                time.sleep(1)
        yield address, env, nodes
    finally:
        for node in nodes:
            if node.poll() is None:
                os.killpg(node.pid, signal.SIGTERM)
        subprocess.run([RAY, "stop", "--force"], env=env, capture_output=True, timeout=120)


def kill_node(node: subprocess.Popen) -> None:
    os.killpg(node.pid, signal.SIGKILL)
