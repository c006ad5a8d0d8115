# SPDX-License-Identifier: Apache-2.0
"""Small helpers for tests that run real node processes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path


def udp_sockets(pid: int) -> list[tuple[str, str, int]]:
    """(protocol, local IP, local port) of every UDP socket the process ``pid`` holds.

    Maps the socket inodes in /proc/<pid>/fd to the entries of /proc/<pid>/net/udp and udp6.
    """
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            m = re.fullmatch(r"socket:\[(\d+)\]", os.readlink(fd))
        except OSError:
            continue
        if m:
            inodes.add(m.group(1))
    found = []
    for proto in ("udp", "udp6"):
        lines = Path(f"/proc/{pid}/net/{proto}").read_text().splitlines()[1:]
        for line in lines:
            parts = line.split()
            if parts[9] not in inodes:
                continue
            hex_ip, hex_port = parts[1].split(":")
            raw = bytes.fromhex(hex_ip)
            if proto == "udp":
                ip = ".".join(str(b) for b in raw[::-1])
            else:  # four little-endian 32-bit words
                words = [raw[i:i + 4][::-1] for i in range(0, 16, 4)]
                ip = ":".join(b"".join(words).hex()[i:i + 4] for i in range(0, 32, 4))
            found.append((proto, ip, int(hex_port, 16)))
    return found


class LineReader:
    """Collects the stdout lines of a process on a background thread."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for line in iter(self.proc.stdout.readline, ""):
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, pattern: str, timeout_s: float, start: int = 0) -> str | None:
        """The first line (from index ``start``) matching ``pattern``, or None after the timeout."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                for line in self.lines[start:]:
                    if re.search(pattern, line):
                        return line
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (not self._thread.is_alive() and self.proc.poll() is not None):
                    return None
                self._cond.wait(min(remaining, 0.2))

    def text(self) -> str:
        with self._cond:
            return "\n".join(self.lines)


def stop(proc: subprocess.Popen, timeout_s: float = 10.0) -> int:
    """SIGINT, then SIGKILL; returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode
