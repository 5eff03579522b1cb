"""A Python subprocess that reports with JSON event lines (``{"event": "ready", ...}``).

`neurogrs serve`, `replay`, `listen` and the bench echo announce themselves this way; the
service benchmark and the CLI tests drive them through this one helper: every wait is
bounded (TransportTimeout naming the process and the tail of its stderr), and the process
is stopped (SIGTERM, then SIGKILL) instead of being left behind.
"""
from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Callable

from neurogrs.errors import TransportTimeout

__all__ = ["EventProcess"]


class EventProcess:
    """``sys.executable *args`` with stdout and stderr read line by line in threads.

    JSON lines carrying an ``event`` key, on either stream, are events (`event(name)`
    waits for one); `err` keeps every stderr line; `t0` is the perf_counter at spawn."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.t0 = time.perf_counter()
        env = dict(os.environ if env is None else env, PYTHONUNBUFFERED="1")
        self.p = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env)
        self.lines: queue.Queue = queue.Queue()
        self.err: list[str] = []
        self.name = " ".join(a for a in args[:3] if len(a) < 60)
        threading.Thread(target=self._pump, args=(self.p.stdout, self.lines.put), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.p.stderr, self._on_err), daemon=True).start()

    def _on_err(self, line: str) -> None:
        self.err.append(line)
        self.lines.put(line)

    @staticmethod
    def _pump(stream: Any, put: Callable[[str], None]) -> None:
        for line in stream:
            put(line)

    def event(self, name: str, timeout: float = 15.0) -> dict:
        """The next JSON line with ``"event": name``; after `timeout` seconds without one,
        kill the process and raise TransportTimeout."""
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict) and obj.get("event") == name:
                return obj
        self.kill()
        raise TransportTimeout(f"{self.name}: no {name!r} event within {timeout:g} s; "
                               f"stderr: {''.join(self.err)[-1500:]}")

    def wait(self, timeout: float = 15.0) -> int:
        """The exit code; kill and raise TransportTimeout if it has not exited in time."""
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise TransportTimeout(f"{self.name}: did not exit within {timeout:g} s") from None

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM (a clean shutdown), SIGKILL after `timeout`; returns the exit code."""
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.p.returncode

    def kill(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(5)

    def rss_bytes(self) -> int:
        """Resident memory now (from /proc), -1 if unknown."""
        with open(f"/proc/{self.p.pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return -1

    def cpu_seconds(self) -> float:
        """user + system CPU time of the process so far (from /proc)."""
        with open(f"/proc/{self.p.pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
