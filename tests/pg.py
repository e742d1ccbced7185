"""A throwaway PostgreSQL server for tests: Debian's binaries, run as the ``postgres`` system user.

``initdb`` and ``postgres`` refuse to run as root, so every server command runs through
``runuser -u postgres``, in a folder under the system temp dir that ``postgres`` owns (pytest's own
tmp folders are 0700 root and not reachable by it). The server listens on 127.0.0.1 only, on a free
port, with its Unix socket in a folder it owns; :meth:`Server.stop` stops it and removes the folder.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

USER = "postgres"


def bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding ``initdb``, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0)
    return Path(found[-1]).parent if found else None


def install() -> None:
    """``apt-get install postgresql`` (root only); raises CalledProcessError with apt's output on failure."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "postgresql"]):
        subprocess.run(cmd, check=True, capture_output=True, text=True, env=env, timeout=900)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", USER, "--", *args], check=True, capture_output=True, text=True,
                          **kwargs)


@dataclass
class Server:
    bin: Path
    root: Path
    port: int

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str) -> str:
        # the driver named: SQLAlchemy >= 2.1 maps a bare postgresql:// to psycopg 3, and the test extra
        # installs psycopg2-binary
        return f"postgresql+psycopg2://{USER}@127.0.0.1:{self.port}/{database}"

    def ready(self) -> bool:
        return subprocess.run([str(self.bin / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)],
                              capture_output=True).returncode == 0

    def create_database(self, name: str) -> None:
        _as_postgres([str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), name], timeout=60)

    def log(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                _as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"],
                             timeout=120)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def start(bin: Path, timeout: int = 300) -> Server:
    """initdb a new cluster, start it on a free loopback port; ``pg_ctl -w`` returns once it accepts
    connections (``timeout``: pg_ctl's own limit, for a server that never comes up)."""
    import pwd

    pw = pwd.getpwnam(USER)
    root = Path(tempfile.mkdtemp(prefix="battlab-pg-"))
    os.chown(root, pw.pw_uid, pw.pw_gid)
    server = Server(bin, root, free_port())
    try:
        (root / "sock").mkdir()
        os.chown(root / "sock", pw.pw_uid, pw.pw_gid)
        _as_postgres([str(bin / "initdb"), "-D", str(server.data), "-U", USER, "-A", "trust", "-E", "UTF8",
                      "--no-sync"], timeout=300)
        options = (f"-c listen_addresses=127.0.0.1 -p {server.port} -k {root / 'sock'} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        try:
            _as_postgres([str(bin / "pg_ctl"), "-D", str(server.data), "-l", str(root / "server.log"), "-o",
                          options, "-w", "-t", str(timeout), "start"], timeout=timeout + 60)
        except subprocess.CalledProcessError as err:
            raise RuntimeError(f"PostgreSQL did not start on port {server.port}: {err.stdout}{err.stderr}\n"
                               f"{server.log()}") from err
        if not server.ready():
            raise RuntimeError(f"pg_ctl started PostgreSQL but pg_isready says no on port {server.port}:\n"
                               f"{server.log()}")
        return server
    except BaseException:
        server.stop()
        raise
