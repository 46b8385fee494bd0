"""A real one-node SLURM cluster on localhost for the tests: installed from apt where missing,
started by hand (no init system), stopped by PID.

Daemons: munged (reused when one already answers), slurmctld and slurmd with a slurm.conf in a
temporary folder (no cgroups: ``proctrack/linuxproc``, ``task/none``; no accounting, so jobs
are followed with ``squeue``). Clients find the cluster through ``SLURM_CONF``; inside a job
the SLURM executor clears ``SLURM_*`` variables before it calls ``srun``, so the config is also
put at the default path /etc/slurm/slurm.conf, only where no slurm.conf exists (a real
cluster's is never touched), and removed again at the end.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
DEFAULT_CONF = Path("/etc/slurm/slurm.conf")
MARK = "# written by avhrrsm tests/slurm_cluster.py"
BINARIES = ("slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol", "munged")


class ClusterUnavailable(RuntimeError):
    """SLURM cannot run here (no root, no apt, or the daemons would not start)."""


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=600, **kwargs)


def ensure_installed() -> None:
    if all(shutil.which(b) or Path("/usr/sbin", b).exists() for b in BINARIES):
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise ClusterUnavailable("SLURM is not installed and cannot be (needs root and apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES]
    if _run(install, env=env).returncode != 0:
        _run(["apt-get", "update"], env=env)
        result = _run(install, env=env)
        if result.returncode != 0:
            raise ClusterUnavailable(
                f"apt-get install {' '.join(PACKAGES)} failed: {result.stderr[-500:]}"
            )


def _alive(pid: int, name: str) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == name
    except OSError:
        return False


class LocalSlurm:
    """Start with :meth:`start`, stop with :meth:`stop`; ``env`` is what clients need."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.conf = folder / "slurm.conf"
        self.host = socket.gethostname().split(".")[0]
        self.pids: dict[str, int] = {}
        self.partition = "debug"
        self.wrote_default_conf = False

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def _write_conf(self) -> None:
        cpus = os.cpu_count() or 1
        probe = _run(["/usr/sbin/slurmd", "-C"]).stdout
        memory = next(
            (int(t.split("=")[1]) for t in probe.split() if t.startswith("RealMemory=")), 4096
        )
        for sub in ("state", "spool"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        self.conf.write_text(
            "\n".join(
                [
                    MARK,
                    "ClusterName=avhrrsmtest",
                    f"SlurmctldHost={self.host}(127.0.0.1)",
                    "SlurmUser=root",
                    "AuthType=auth/munge",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_Core_Memory",
                    "ReturnToService=2",
                    "MinJobAge=300",
                    "MpiDefault=none",
                    "JobAcctGatherType=jobacct_gather/none",
                    "AccountingStorageType=accounting_storage/none",
                    f"StateSaveLocation={self.folder / 'state'}",
                    f"SlurmdSpoolDir={self.folder / 'spool'}",
                    f"SlurmctldPidFile={self.folder / 'slurmctld.pid'}",
                    f"SlurmdPidFile={self.folder / 'slurmd.pid'}",
                    f"SlurmctldLogFile={self.folder / 'slurmctld.log'}",
                    f"SlurmdLogFile={self.folder / 'slurmd.log'}",
                    f"NodeName={self.host} NodeAddr=127.0.0.1 CPUs={cpus} "
                    f"RealMemory={int(memory * 0.9)} State=UNKNOWN",
                    f"PartitionName={self.partition} Nodes={self.host} Default=YES "
                    "MaxTime=INFINITE State=UP",
                    "",
                ]
            )
        )

    def _default_conf(self) -> None:
        if DEFAULT_CONF.exists() and MARK not in DEFAULT_CONF.read_text(errors="replace"):
            raise ClusterUnavailable(f"{DEFAULT_CONF} exists (a real cluster): not touching it")
        DEFAULT_CONF.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.conf, DEFAULT_CONF)
        self.wrote_default_conf = True

    def _munge(self) -> None:
        if _run(["sh", "-c", "munge -n | unmunge"]).returncode == 0:
            return  # a munged already answers: reuse it, it is not ours to stop
        Path("/run/munge").mkdir(parents=True, exist_ok=True)
        shutil.chown("/run/munge", "munge", "munge")
        if not Path("/etc/munge/munge.key").exists():
            _run(["runuser", "-u", "munge", "--", "mungekey", "--create"])
        # the pid file goes where user munge may write: the test's own folder can lie under a
        # folder only root may enter (pytest's basetemp is 0700)
        pid_file = Path("/run/munge") / f"munged-avhrrsm-test-{os.getpid()}.pid"
        pid_file.unlink(missing_ok=True)
        result = _run(
            ["runuser", "-u", "munge", "--", "/usr/sbin/munged", f"--pid-file={pid_file}"]
        )
        if result.returncode != 0:
            raise ClusterUnavailable(f"munged would not start: {result.stderr[-300:]}")
        for _ in range(50):
            if pid_file.exists():
                self.pids["munged"] = int(pid_file.read_text().split()[0])
                break
            time.sleep(0.1)

    def start(self, timeout: float = 60) -> None:
        ensure_installed()
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o755)
        self._write_conf()
        self._default_conf()
        try:
            self._munge()
        except BaseException:
            self.stop()  # a half-started cluster leaves nothing behind (/etc/slurm/slurm.conf)
            raise
        for daemon in ("slurmctld", "slurmd"):
            result = _run([f"/usr/sbin/{daemon}", "-f", str(self.conf)], env=self.env)
            if result.returncode != 0:
                self.stop()
                raise ClusterUnavailable(f"{daemon} would not start: {result.stderr[-300:]}")
            pid_file = self.folder / f"{daemon}.pid"
            for _ in range(100):
                if pid_file.exists() and pid_file.read_text().strip():
                    self.pids[daemon] = int(pid_file.read_text().split()[0])
                    break
                time.sleep(0.1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = _run(["sinfo", "-h", "-o", "%t", "-n", self.host], env=self.env).stdout.strip()
            if state == "idle":
                return
            if state.startswith(("down", "drain")):
                _run(["scontrol", "update", f"NodeName={self.host}", "State=RESUME"], env=self.env)
            time.sleep(0.5)
        log = (
            (self.folder / "slurmctld.log").read_text()[-1000:]
            if (self.folder / "slurmctld.log").exists()
            else ""
        )
        self.stop()
        raise ClusterUnavailable(f"the node did not become idle in {timeout} s: {log}")

    def stop(self) -> None:
        if shutil.which("scancel") and self.conf.exists():
            _run(["scancel", "--user", "root"], env=self.env)
        for name in ("slurmd", "slurmctld", "munged"):
            pid = self.pids.pop(name, None)
            if pid is None or not _alive(pid, name):
                continue
            os.kill(pid, 15)
            for _ in range(100):
                if not _alive(pid, name):
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, 9)
        if self.wrote_default_conf and DEFAULT_CONF.exists():
            if MARK in DEFAULT_CONF.read_text(errors="replace"):
                DEFAULT_CONF.unlink()
            self.wrote_default_conf = False
