"""A throwaway PostgreSQL server for the tests: initdb into a temp folder, pg_ctl on loopback.

Debian's ``postgresql`` package puts the binaries under /usr/lib/postgresql/<major>/bin
(``make test`` installs it). initdb refuses to run as root, so as root the cluster belongs
to the ``postgres`` user the package creates; otherwise it runs as whoever runs the tests.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

INSTALL = "apt-get install postgresql (Debian's package; `make test` does it as root)"


def bindir() -> Path:
    """The folder holding initdb and pg_ctl (the newest major version); fails if none."""
    found = sorted(
        (Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1]
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).parent
    pytest.fail(f"PostgreSQL's initdb and pg_ctl are missing: {INSTALL}", pytrace=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A PostgreSQL cluster in a temp folder, trust auth for user ``workbench``, loopback only."""

    def __init__(self) -> None:
        self.bin = bindir()
        self.root = Path(tempfile.mkdtemp(prefix="workbench-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.owner: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                self.owner = pwd.getpwnam("postgres")
            except KeyError:
                pytest.fail(f"no postgres user to run the server as: {INSTALL}", pytrace=False)
            os.chown(self.root, self.owner.pw_uid, self.owner.pw_gid)

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.owner is not None:
            cmd = ["runuser", "-u", self.owner.pw_name, "--", *cmd]
        return subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, cwd=self.root, check=False
        )

    def start(self) -> str:
        """Create the cluster and start the server; the URL of its ``workbench`` database."""
        for step in (
            ("initdb", "-D", str(self.data), "-A", "trust", "-U", "workbench", "-E", "UTF8"),
            (
                "pg_ctl",
                "-D",
                str(self.data),
                "-l",
                str(self.root / "server.log"),
                "-o",
                f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off",
                "-w",
                "start",
            ),
        ):
            done = self._run(*step)
            if done.returncode != 0:
                log = self.root / "server.log"
                tail = log.read_text()[-2000:] if log.exists() else ""
                pytest.fail(f"{step[0]} failed:\n{done.stdout}\n{done.stderr}\n{tail}")
        self.createdb("workbench")
        return self.url("workbench")

    def url(self, database: str) -> str:
        return f"postgresql://workbench@127.0.0.1:{self.port}/{database}"

    def createdb(self, name: str) -> str:
        """A new empty database on the server; its URL."""
        done = self._run(
            "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "workbench", name
        )
        assert done.returncode == 0, done.stderr
        return self.url(name)

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


def write_runs(url: str, worker: int, n: int) -> None:
    """One of several writer processes: a run of n results with a score each, finished.

    Here rather than in the test module so that a spawned process imports little."""
    from workbench.store import ResultRow, ScoreRow, Store

    with Store(url) as s:  # every worker migrates the empty database at once
        rid = s.create_run(
            dataset="d", dataset_hash="h", target=f"w{worker}", run_id=f"run-{worker}"
        )
        for i in range(n):
            s.record_result(ResultRow(rid, f"c{i}", 0, passed=True), [ScoreRow("exact", 1.0, True)])
        s.finish_run(rid, "finished")
