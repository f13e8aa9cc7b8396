"""What the first cell of every notebook does, in one call each: checks, device, threads, seeds, folders, splits.

A notebook's setup cell reads::

    nb = start_notebook("02_training", SEED, SMOKE, OUTPUT_DIR, FIGURES_DIR, device=DEVICE, amp=AMP,
                        cpu_threads=CPU_THREADS)
    PREP = nb.upstream("DATA_PREP_DIR", DATA_PREP_DIR, "01_data_prep", "splits.json")
    prep, all_splits = load_splits(PREP)
    splits = select_splits(all_splits, N_SPLITS, SPLIT_INDICES, SMOKE)

A bad parameter fails here with a :class:`~zsar.experiments.parameters.ParameterError` naming it
and its allowed values; a missing upstream run names the notebook to run first.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from zsar.data.protocols import ZeroShotSplit
from zsar.experiments.parameters import ParameterError, check_choice, check_range
from zsar.seed import seed_everything
from zsar.workbook.notebook import figures_folder, run_folder

SMOKE_SPLITS = 2
"""Splits a smoke run keeps at most."""


def check_list(name: str, value: Any, allowed: Iterable[Any] | None = None, empty_ok: bool = False) -> list:
    """``value`` as a list without repeats (of items from ``allowed``, when given), else a ParameterError naming ``name``."""
    allowed = None if allowed is None else sorted(allowed)
    if not isinstance(value, (list, tuple)) or (not value and not empty_ok) or len(set(value)) != len(value):
        raise ParameterError(f"parameter {name}={value!r} must be a {'' if empty_ok else 'non-empty '}list "
                             "without repeats" + (f" of {allowed}" if allowed is not None else ""))
    for item in value if allowed is not None else ():
        check_choice(f"{name} item", item, allowed)
    return list(value)


def benchmark_root(data_root, smoke: bool, clips_per_class: int | None = None) -> Path:
    """The embedded benchmark's folder: ``data_root`` if given, else ``data/embedded_smoke`` (smoke),
    ``data/embedded`` (the full 150 clips per class, ``clips_per_class`` ``None``) or
    ``data/embedded_<clips_per_class>``, so benchmarks of different sizes never overwrite each other."""
    from zsar import paths
    from zsar.data.embedded import BenchmarkConfig

    if data_root:
        return Path(data_root).expanduser().resolve()
    if smoke:
        return paths.data_dir() / "embedded_smoke"
    full = clips_per_class is None or clips_per_class == BenchmarkConfig().clips_per_class
    return paths.data_dir() / ("embedded" if full else f"embedded_{clips_per_class}")


def benchmark_config(smoke: bool, clips_per_class: int | None = None, seed: int = 0, size: int | None = None):
    """The :class:`~zsar.data.embedded.BenchmarkConfig` a notebook renders: the smoke or full config with
    ``seed``, ``size`` and (outside a smoke run, whose 4 clips per class stay) ``clips_per_class``."""
    from zsar.data.embedded import BenchmarkConfig

    config = BenchmarkConfig.smoke() if smoke else BenchmarkConfig()
    overrides = {"seed": seed, **({"size": size} if size is not None else {})}
    if clips_per_class is not None and not smoke:
        check_range("CLIPS_PER_CLASS", clips_per_class, 1, types=(int,))
        overrides["clips_per_class"] = clips_per_class
    return BenchmarkConfig.from_dict({**config.to_dict(), **overrides})


WORLD = "world"
"""The ``PRETRAINED`` value that means the project's own world model of the notebook's ``REGIME``."""
REGIMES = ("open", "disjoint")


def resolve_pretrained(pretrained: str | None, regime: str = "open", smoke: bool = False) -> str | None:
    """The weights a notebook's methods start from, from its ``PRETRAINED`` and ``REGIME`` parameters.

    ``"world"`` is the world model ``zsar-world-<regime>`` (notebook 00; pretrained here on first
    use, then read from the cache), its ``-smoke`` size in a smoke run; ``None`` is random init;
    anything else (an open_clip tag, a checkpoint path, an explicit world tag) is kept as given.

    Raises:
        ParameterError: ``REGIME`` is not ``open`` or ``disjoint``, or ``PRETRAINED`` is not a string.
    """
    check_choice("REGIME", regime, list(REGIMES))
    if pretrained is not None and not isinstance(pretrained, str):
        raise ParameterError(f"parameter PRETRAINED={pretrained!r} must be None, 'world', an open_clip tag or a path")
    if pretrained != WORLD:
        return pretrained
    return f"zsar-world-{regime}" + ("-smoke" if smoke else "")


def resolve_device(device: str = "auto", amp: str = "auto") -> tuple[str | None, str, bool]:
    """``(device for the methods, AMP mode, on CUDA)`` from the ``DEVICE`` and ``AMP`` parameters.

    ``device`` is ``auto`` (CUDA when there is one), ``cpu``, ``cuda`` or ``cuda:N``; ``amp`` is
    ``auto`` (bf16 on CUDA, none on a CPU, so results do not depend on a CPU's bf16 units),
    ``none``, ``bf16`` or (CUDA only) ``fp16``. The returned device is ``None`` for ``auto``.
    """
    import torch

    cuda = torch.cuda.is_available()
    choices = ["auto", "cpu"] + (["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())] if cuda else [])
    check_choice("DEVICE", device, choices)
    on_cuda = device.startswith("cuda") or (device == "auto" and cuda)
    check_choice("AMP", amp, ["auto", "none", "bf16"] + (["fp16"] if on_cuda else []))
    resolved = ("bf16" if on_cuda else "none") if amp == "auto" else amp
    return (None if device == "auto" else device), resolved, on_cuda


def set_cpu_threads(cpu_threads: int | None, smoke: bool) -> int:
    """torch's CPU threads: ``cpu_threads``, else 1 in a smoke run, else torch's default; returned.

    Tiny smoke models gain nothing from threads, and on a CPU shared with other jobs idle-waiting
    threads slow every step down several times.
    """
    import torch

    if cpu_threads is not None:
        check_range("CPU_THREADS", cpu_threads, 1, types=(int,))
    torch.set_num_threads(cpu_threads or (1 if smoke else torch.get_num_threads()))
    return torch.get_num_threads()


@dataclass(frozen=True)
class Notebook:
    """One notebook run: its run and figure folders and, for notebooks that train, device and AMP."""

    name: str
    run: Path
    figures: Path
    device: str | None = None
    amp: str = "none"
    on_cuda: bool = False

    def upstream(self, parameter: str, value: str | os.PathLike | None, notebook: str,
                 required: str | None = "metrics.json") -> Path:
        """The run folder of an earlier ``notebook``: ``value`` if set, else the sibling folder.

        Raises:
            FileNotFoundError: ``required`` is not in it (the message names the notebook to run
                first and the ``parameter`` that points elsewhere).
        """
        folder = Path(value) if value else self.run.parent / notebook
        if required is not None and not (folder / required).is_file():
            raise FileNotFoundError(f"{folder / required} not found: run notebook {notebook} first or set {parameter}")
        return folder


def start_notebook(name: str, seed: int, smoke: bool, output_dir=None, figures_dir=None, device: str | None = None,
                   amp: str | None = None, threads: bool = False, cpu_threads: int | None = None,
                   style: bool = True) -> Notebook:
    """Check the common parameters, set threads and seeds, make the run and figure folders.

    Args:
        name: the notebook's stem (its default run folder is ``runs/<name>``).
        seed, smoke, output_dir, figures_dir: the ``SEED``, ``SMOKE``, ``OUTPUT_DIR`` and
            ``FIGURES_DIR`` parameters.
        device, amp: ``DEVICE`` and ``AMP`` of a notebook that trains (see :func:`resolve_device`).
        threads, cpu_threads: set torch's CPU threads from ``CPU_THREADS`` (see :func:`set_cpu_threads`).
        style: apply the figure style of :mod:`zsar.report.plotting`.
    """
    check_range("SEED", seed, 0, types=(int,))
    check_choice("SMOKE", smoke, [True, False])
    resolved = resolve_device(device, amp or "auto") if device is not None else (None, "none", False)
    if threads:
        set_cpu_threads(cpu_threads, smoke)
    seed_everything(seed)
    if style:
        from zsar.report.plotting import set_style

        set_style()
    return Notebook(name, run_folder(name, output_dir), figures_folder(figures_dir), *resolved)


def load_splits(prep_dir: str | os.PathLike) -> tuple[dict, list[ZeroShotSplit]]:
    """``(splits.json content, every split)`` that notebook ``01_data_prep`` wrote in ``prep_dir``."""
    prep = json.loads((Path(prep_dir) / "splits.json").read_text(encoding="utf-8"))
    n_classes = len(prep["class_names"])
    return prep, [ZeroShotSplit(s["seen"], s["unseen"], s.get("seed"), s["name"], n_classes) for s in prep["splits"]]


def select_splits(all_splits: list[ZeroShotSplit], n_splits: int, indices=None, smoke: bool = False) -> list:
    """The splits a notebook runs: ``indices`` (the ``SPLIT_INDICES`` parameter) or the first ``n_splits``;
    a smoke run keeps at most :data:`SMOKE_SPLITS`."""
    check_range("N_SPLITS", n_splits, 1, types=(int,))
    if indices is not None and not isinstance(indices, (list, tuple)):
        raise ParameterError(f"parameter SPLIT_INDICES={indices!r} must be None or a list of split positions")
    chosen = list(range(min(n_splits, len(all_splits)))) if indices is None else list(indices)
    for i in chosen:
        check_choice("SPLIT_INDICES item", i, range(len(all_splits)))
    if len(set(chosen)) != len(chosen):
        raise ParameterError(f"parameter SPLIT_INDICES={indices!r} repeats a split")
    return [all_splits[i] for i in (chosen[:SMOKE_SPLITS] if smoke else chosen)]
