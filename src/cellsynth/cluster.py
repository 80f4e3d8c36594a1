"""Samples as tasks on a Dask distributed cluster (``generate --scheduler``; extra ``cellsynth[dask]``).

A sample depends on (config, seed, i) only and every file is written atomically, so a
task can run on any worker, be retried after a worker dies, and still give the bytes a
serial run gives. ``local:N`` starts N single-threaded worker processes on this machine
(loopback only); ``tcp://HOST:PORT`` joins a running scheduler — e.g. one started by
dask-jobqueue on a SLURM cluster — whose workers must see the output folder (a shared
file system) and have cellsynth installed.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
from collections.abc import Iterator
from typing import Any

from .errors import ConfigError, InputError

log = logging.getLogger(__name__)

RETRIES = 2  # a task whose worker died is rerun elsewhere up to this many times
_LOCAL = re.compile(r"local:(\d+)")


def check_scheduler(scheduler: str) -> None:
    """Refuse a malformed ``--scheduler`` or a missing dask before anything is written."""
    m = _LOCAL.fullmatch(scheduler)
    if m is None and not re.fullmatch(r"tcp://[^:/\s]+:\d+", scheduler):
        raise ConfigError(f"--scheduler must be local:N or tcp://HOST:PORT, got '{scheduler}'")
    if m is not None and int(m.group(1)) < 1:
        raise ConfigError(f"--scheduler local:N needs N >= 1, got '{scheduler}'")
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise ConfigError("--scheduler needs dask.distributed: pip install 'cellsynth[dask]'") from None
    if m is None:  # a scheduler that does not answer is refused before any output exists
        host, port = scheduler[len("tcp://"):].rsplit(":", 1)
        try:
            socket.create_connection((host, int(port)), timeout=10).close()
        except OSError as e:
            raise InputError(f"--scheduler '{scheduler}' cannot be reached ({e.strerror or type(e).__name__})") \
                from None


@contextlib.contextmanager
def connect(scheduler: str, timeout: float = 30.0) -> Iterator[Any]:
    """A ``distributed.Client`` for ``local:N`` (a new loopback LocalCluster) or ``tcp://HOST:PORT``."""
    check_scheduler(scheduler)
    from distributed import Client, LocalCluster
    m = _LOCAL.fullmatch(scheduler)
    with contextlib.ExitStack() as stack:
        if m is not None:
            # one BLAS/OpenMP thread per worker process: the processes already fill the cores
            cluster = stack.enter_context(LocalCluster(
                n_workers=int(m.group(1)), threads_per_worker=1, processes=True, host="127.0.0.1",
                dashboard_address="127.0.0.1:0", silence_logs=logging.WARNING,
                env={k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}))
            address = cluster.scheduler_address
        else:
            address = scheduler
        try:
            client = stack.enter_context(Client(address, timeout=timeout))
        except (OSError, TimeoutError) as e:
            raise InputError(f"--scheduler '{scheduler}' cannot be reached ({type(e).__name__}: {e})") from None
        log.info("dask scheduler %s with %d worker(s)", address, len(client.scheduler_info()["workers"]))
        yield client


def _make(i: int, job) -> dict:
    if job.threads:
        with contextlib.suppress(ImportError):
            import torch
            if torch.get_num_threads() != job.threads:
                torch.set_num_threads(job.threads)
    return job.make(i)


def run_samples(client, job, todo: list[int], bar) -> None:
    """Make samples ``todo`` as tasks; the bar advances as tasks complete; the first error is raised."""
    from distributed import as_completed
    job_future = client.scatter(job, broadcast=True)  # sent once per worker, not once per task
    futures = client.map(_make, todo, job=job_future, pure=False, retries=RETRIES,
                         key=[f"cellsynth-sample-{i}-{os.urandom(4).hex()}" for i in todo])
    try:
        for f in as_completed(futures):
            f.result()
            bar.update(1)
    finally:
        client.cancel(futures)
