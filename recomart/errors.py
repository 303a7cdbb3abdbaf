"""What happened and what to do, for the failures a newcomer meets first.

`explain(exc, command, cfg, port)` recognises them anywhere in the exception's chain (dlt and dbt
wrap the original errors in their own) and returns an `Advice`; None for anything else, which the
CLI then reports as before:

- the warehouse locked by another process (DuckDB: one writer, or several readers, never both);
- a port already taken (`catalog-api`, or any command with a --port);
- no trained model yet (`recommend` before `train`);
- a missing input file or an input folder with no file, and tables an earlier stage writes.
"""

from __future__ import annotations

import errno
import re
import socket
from dataclasses import dataclass
from pathlib import Path

from recomart_core import config

LOCK = re.compile(
    r'Could not set lock on file "(?P<path>[^"]+)": Conflicting lock is held in (?P<exe>\S+)'
    r" \(PID (?P<pid>\d+)\)"
)
MISSING_TABLE = re.compile(r"Table with name \"?(?P<table>[\w.]+)\"? does not exist")


@dataclass(frozen=True)
class Advice:
    what: str  # what happened, in one sentence
    todo: str  # what to do about it


def _chain(exc: BaseException) -> list[BaseException]:
    """exc and every exception it was raised from or during, outermost first."""
    seen: list[BaseException] = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def process_name(pid: int) -> str:
    """The command line of process `pid`, shortened; '?' when it cannot be read."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    text = raw.replace(b"\0", b" ").decode(errors="replace").strip()
    return text if len(text) <= 120 else text[:117] + "..."


def port_owner(port: int) -> int | None:
    """The PID of the process listening on TCP `port` (Linux /proc), when this user may see it."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # LISTEN
                inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return None
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            for fd in fd_dir.iterdir():
                if str(fd.readlink()) in inodes:
                    return int(fd_dir.parent.name)
        except OSError:  # a process that ended, or one this user may not look into
            continue
    return None


class PortInUse(OSError):
    """The port a server was asked to listen on is taken (errno EADDRINUSE)."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(errno.EADDRINUSE, f"{host}:{port} is already in use")
        self.port = port


def ensure_port_free(host: str, port: int) -> None:
    """Raise PortInUse when nothing can listen on host:port; call it before starting a server
    whose own error on a taken port does not reach the CLI (uvicorn exits on its own)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        # as servers do: a port in TIME_WAIT is free, only a listening socket makes it taken
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(host, port) from None
            raise


def explain(
    exc: BaseException, command: str, cfg: config.Config, port: int | None = None
) -> Advice | None:
    """Advice for a failure of `recomart <command>`; None when it is not one of the known ones."""
    chain = _chain(exc)
    text = "\n".join(str(e) for e in chain)
    if lock := LOCK.search(text):
        return _locked(lock, command)
    for e in chain:
        taken = getattr(e, "port", None) or port
        if isinstance(e, OSError) and e.errno == errno.EADDRINUSE and taken is not None:
            return _port_taken(command, taken)
    for e in chain:
        if isinstance(e, FileNotFoundError) and e.filename:
            return _missing_file(Path(e.filename), command, cfg)
    if table := MISSING_TABLE.search(text):
        return Advice(
            f"the warehouse {cfg.paths.warehouse} has no table {table['table']} yet",
            f"`recomart {command}` reads what earlier stages write: run them first (`make demo`"
            " runs every stage: generate, ingest, transform, quality, train), or check that"
            " RECOMART_HOME / RECOMART_CONFIG point at the project home you meant.",
        )
    return None


def _locked(lock: re.Match, command: str) -> Advice:
    pid = int(lock["pid"])
    return Advice(
        f"the warehouse {lock['path']} is locked by another process: PID {pid}"
        f" ({process_name(pid)})",
        "DuckDB lets one process write a database file, or several read it, never both at once."
        " Close that process (a duckdb shell, a notebook, another recomart command or Airflow"
        f" task) or let it finish, then run `recomart {command}` again. To look at the data"
        f" while the pipeline runs, open it read-only: duckdb -readonly {lock['path']}",
    )


def _port_taken(command: str, port: int) -> Advice:
    pid = port_owner(port)
    owner = f"PID {pid} ({process_name(pid)})" if pid else "another process"
    return Advice(
        f"port {port} is already in use by {owner}",
        f"stop that process (kill {pid or '<pid>'}; `ss -ltnp 'sport = :{port}'` shows it), or"
        f" choose a free port: recomart {command} --port {port + 11}",
    )


def _missing_file(path: Path, command: str, cfg: config.Config) -> Advice:
    paths = cfg.paths
    if path.is_relative_to(paths.models):
        return Advice(
            f"no trained model yet: {path} does not exist",
            "train one first: `make train` (or `make demo` for every stage). A model is saved"
            " there only when it was promoted to champion; see the `promotion_reason` of the"
            " last MLflow run (`make mlflow-ui`) if training ran.",
        )
    if path.is_relative_to(paths.generated):
        return Advice(
            f"{path} does not exist: the demo data has not been generated in {paths.generated}",
            "run `make generate` (or `make demo`), or set [paths] in recomart.toml to your data.",
        )
    return Advice(
        f"{path} does not exist",
        f"check the path (RECOMART_HOME is {paths.home}; paths come from recomart.toml [paths]"
        f" or the command's options), then run `recomart {command}` again.",
    )
