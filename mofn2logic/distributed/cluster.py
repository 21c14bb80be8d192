"""A Dask client: to a running scheduler (``tcp://host:port``) or to a local cluster of N workers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

from mofn2logic.errors import DataError, Mofn2LogicError


class ClusterError(Mofn2LogicError):
    """The cluster cannot be reached, or lost the work (e.g. workers died more often than Dask retries)."""


def _require() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError as e:
        raise DataError("--scheduler and --workers need Dask, which is not installed "
                        "(pip install 'mofn2logic[dask]')") from e


LOCAL_CONFIG = {"distributed.scheduler.work-stealing": False, "distributed.worker.profile.enabled": False,
                "distributed.admin.tick.interval": "1s", "distributed.admin.system-monitor.interval": "2s"}


@contextlib.contextmanager
def connect(scheduler: str | None = None, workers: int | None = None, *, processes: bool = True,
            timeout: float = 20.0) -> Iterator[Any]:
    """A `distributed.Client`: to `scheduler`, or to a new local cluster of `workers` single-threaded
    workers (processes, or threads of this process); closed on exit."""
    _require()
    import dask
    from distributed import Client, LocalCluster

    with dask.config.set({"distributed.worker.daemon": False, "distributed.logging.distributed": "error"}):
        if scheduler:
            try:
                client = Client(scheduler, timeout=timeout)
            except (OSError, TimeoutError) as e:
                raise ClusterError(f"cannot reach the Dask scheduler at {scheduler!r} ({type(e).__name__}); "
                                   "expected a running `dask scheduler` at tcp://HOST:PORT") from e
            try:
                yield client
            finally:
                client.close()
            return
        if workers is None or workers < 1:
            raise DataError(f"a local cluster needs 1 or more workers, got {workers!r}")
        # no work stealing on a cluster of our own: each shard's tasks go to its home worker, whose caches
        # (examples, sparse rows, pass 2's bins) a thief would miss; a lost worker's tasks still move.
        # The dashboard's feeds are off or slowed (there is no dashboard): the workers' stack sampler (every
        # 10 ms), the event-loop lag ticks (20 ms) and the system monitors (500 ms) took about 2 % of a core
        # per process -- on a machine whose cores the workers fill, time taken from them
        with dask.config.set(LOCAL_CONFIG), \
                LocalCluster(n_workers=workers, threads_per_worker=1, processes=processes, dashboard_address=":0",
                             silence_logs=50) as cluster, Client(cluster) as client:
            yield client


def n_workers(client: Any) -> int:
    return max(1, len(client.scheduler_info().get("workers", {})))


def is_local_address(host: str) -> bool:
    """Whether `host` (an address a worker gave the scheduler) is one of this machine's: a socket can be
    bound to it here."""
    import socket

    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    for family, _, _, _, addr in infos:
        with contextlib.suppress(OSError), socket.socket(family, socket.SOCK_DGRAM) as s:
            s.bind((addr[0], 0))
            return True
    return False


def remote_workers(addresses: Iterable[str]) -> list[str]:
    """Those of the workers' addresses (tcp://HOST:PORT) that are on other machines than this one."""
    from urllib.parse import urlsplit

    return sorted(a for a in addresses if not is_local_address(urlsplit(a).hostname or ""))


def tree_reduce(client: Any, fn: Any, futures: list[Any], priority: int = 0) -> Any:
    """Pairwise reduction of `futures` on the cluster: log2 levels, nothing brought to the client."""
    while len(futures) > 1:
        futures = [client.submit(fn, futures[k], futures[k + 1], pure=False, priority=priority)
                   if k + 1 < len(futures) else futures[k]
                   for k in range(0, len(futures), 2)]
    return futures[0]


def result(future_or_list: Any, client: Any) -> Any:
    """Gather, turning the cluster's failures (a worker lost too often, a lost scheduler) into one line."""
    from concurrent.futures import CancelledError

    from distributed import KilledWorker

    try:
        return client.gather(future_or_list)
    except Mofn2LogicError:
        raise
    except KilledWorker as e:
        raise ClusterError(f"the Dask cluster lost the work: a task's worker died {e.args[0]!r} more often than "
                           "Dask retries; expected workers that stay up (see distributed.scheduler.allowed-failures)") \
            from e
    except (OSError, TimeoutError, CancelledError) as e:
        raise ClusterError(f"the Dask cluster failed: {type(e).__name__}: {e}") from e
