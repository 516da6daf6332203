"""A throwaway PostgreSQL cluster of the machine's own installation (Debian's
postgresql-common), on a port of its own, dropped after: for tests that must restart the server
or see it configured as a stock one is, without touching the machine's main cluster."""

from __future__ import annotations

import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class PrivateCluster:
    version: str
    name: str
    port: int

    @classmethod
    def create(cls, name: str, *initdb: str) -> PrivateCluster:
        """Started, with Debian's default pg_hba.conf (local: peer; host: scram-sha-256) unless
        `initdb` options say otherwise (e.g. "--auth=trust")."""
        listed = _ctl("pg_lsclusters", "-h").split()
        if not listed:
            raise RuntimeError("pg_lsclusters shows no cluster: which PostgreSQL is installed?")
        cluster = cls(listed[0], name, free_port())
        _ctl(
            "pg_createcluster", cluster.version, name, "-p", str(cluster.port), "--start",
            *(("--", *initdb) if initdb else ()),
        )  # fmt: skip
        return cluster

    @property
    def hba(self) -> Path:
        return Path(f"/etc/postgresql/{self.version}/{self.name}/pg_hba.conf")

    def url(self, database: str) -> str:
        return f"postgresql://127.0.0.1:{self.port}/{database}"

    def drop(self) -> None:
        _ctl("pg_dropcluster", "--stop", self.version, self.name)


def _ctl(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)  # noqa: S603
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stdout}{done.stderr}")
    return done.stdout
