"""Harvest and search on a Dask cluster (docs/scale.md), with the rules one machine finds.

Optional: needs the extra ``mofn2logic[dask]``; nothing here is imported unless ``--scheduler`` or
``--workers`` is given (or this package is imported directly).
"""

from __future__ import annotations

import argparse


def add_cluster_args(s: argparse.ArgumentParser, *, store: bool) -> None:
    """--scheduler, --workers and --shards (and --store) on a command; parsing them imports no Dask."""
    s.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                   help="run the harvest and the search on this Dask scheduler's workers (needs mofn2logic[dask])")
    s.add_argument("--workers", type=int, default=None, metavar="N",
                   help="run them on a local Dask cluster of N worker processes (needs mofn2logic[dask])")
    s.add_argument("--shards", type=int, default=None, metavar="K",
                   help="blocks of samples harvested and searched apart (default: one per worker)")
    if store:
        s.add_argument("--store", default=None,
                       help="with --scheduler/--workers: folder the workers share for the sharded activations "
                            "(kept; default a temporary folder, removed at the end)")


def wanted(args: argparse.Namespace) -> bool:
    """Whether the command runs on a cluster."""
    return bool(getattr(args, "scheduler", None) or getattr(args, "workers", None))
