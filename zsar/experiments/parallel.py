"""Split runs in parallel: :func:`map_splits` runs jobs in fresh interpreters and stops them together.

Each parallel job runs in ``python -m zsar.experiments.split_worker`` (the worker side), with
``cpu_count // workers`` torch threads; a failing job or an interrupt kills the other workers at once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Sequence


class _Children:
    """The split workers a :func:`map_splits` call started; all killed if the call is left early."""

    def __init__(self):
        import threading

        self.procs: set = set()
        self.closed = False
        self.lock = threading.Lock()

    def start(self, args: list[str], env: dict):
        import subprocess

        with self.lock:
            if self.closed:  # the call is being left: start nothing more
                raise RuntimeError("map_splits was stopped")
            proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
            self.procs.add(proc)
        return proc

    def kill_all(self) -> None:
        with self.lock:
            self.closed = True
            procs = list(self.procs)
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        for proc in procs:
            proc.wait()


def _run_in_subprocess(fn: Callable, job: tuple, folder: Path, threads: int, children: _Children) -> Any:
    """``fn(*job)`` in a fresh ``python -m zsar.experiments.split_worker``; its result, or a RuntimeError."""
    import pickle
    import sys

    job_file, result_file = folder / "job.pkl", folder / "result.pkl"
    folder.mkdir(parents=True)
    with open(job_file, "wb") as f:
        pickle.dump((fn, job), f)
    from zsar.experiments.split_worker import PARENT_ENV

    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           PARENT_ENV: str(os.getpid())}
    proc = children.start([sys.executable, "-m", "zsar.experiments.split_worker", str(job_file), str(result_file),
                           str(threads)], env)
    _, stderr = proc.communicate()
    if proc.returncode != 0 or not result_file.is_file():
        tail = "\n".join(stderr.strip().splitlines()[-25:])
        raise RuntimeError(f"split job {folder.name} failed (exit code {proc.returncode}):\n{tail}")
    with open(result_file, "rb") as f:
        return pickle.load(f)


def map_splits(fn: Callable, jobs: Sequence[tuple], workers: int = 1, desc: str = "splits",
               progress: bool | None = None) -> list:
    """``[fn(*job) for job in jobs]``, in order; ``workers > 1`` runs that many jobs at once.

    Split runs are independent (their own folders, seeds and checkpoints), so they parallelise
    cleanly; on a GPU several small fits share the device and keep it busy. Each parallel job runs
    in a fresh interpreter (:mod:`zsar.experiments.split_worker`, not ``multiprocessing``, which
    inherits a notebook kernel's main module and state) with ``cpu_count // workers`` torch
    threads. ``fn`` and the jobs must be picklable (module-level functions, :class:`DataSource`,
    :class:`DefaultDatasetFactory`). Results equal a sequential run's: each job seeds itself from
    its arguments. When a job fails or the call is interrupted (a kernel interrupt), the other
    workers are killed at once rather than left running; a worker whose caller is killed outright
    stops by itself (:mod:`~zsar.experiments.split_worker` watches its parent). Finished splits
    keep their run folders, so the next call resumes from them.

    Raises:
        RuntimeError: a job failed; the message holds the end of its traceback.
    """
    import tempfile
    from concurrent.futures import ThreadPoolExecutor, as_completed

    from tqdm.auto import tqdm

    if workers <= 1 or len(jobs) <= 1:
        return [fn(*job) for job in tqdm(jobs, desc=desc, disable=progress is False)]
    bar = tqdm(total=len(jobs), desc=desc, disable=progress is False)
    workers = min(workers, len(jobs))
    threads = max(1, (os.cpu_count() or 1) // workers)
    results: list = [None] * len(jobs)
    children = _Children()
    with tempfile.TemporaryDirectory(prefix="zsar_splits_") as tmp, ThreadPoolExecutor(workers) as pool:
        futures = {pool.submit(_run_in_subprocess, fn, job, Path(tmp) / f"job{i}", threads, children): i
                   for i, job in enumerate(jobs)}
        try:
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                bar.update(1)
        except BaseException:  # a failed job, or KeyboardInterrupt: stop the others now
            for future in futures:
                future.cancel()
            children.kill_all()
            raise
        finally:
            bar.close()
    return results
