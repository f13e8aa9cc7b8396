"""A small training loop every method plugs into through ``loss_fn(model, batch)``.

One epoch: build the epoch's loader (reproducible order), step AdamW with a per-step cosine
schedule, optionally evaluate, append a row to ``history.csv`` / ``history.json`` and write a
checkpoint (atomically, rank 0 only). Re-running with ``resume=True`` continues from the latest
checkpoint and ends with the same weights and metrics as an uninterrupted run: the checkpoint
holds model, optimizer, scheduler, scaler, every rank's RNG states and the history, and the data
order of epoch ``e`` depends only on ``(seed, e)``. Resumption is per epoch: a run killed in the
middle of an epoch repeats that epoch from its start.

Disk: ``keep_last`` epoch checkpoints are kept; ``best.pt`` is a hard link to the best epoch's
file. Frozen parameters that still hold their starting values are left out of every checkpoint
(``omit_frozen``; a locked text tower is most of a fine-tuned world model's file). The final
epoch's checkpoint, and ``best.pt`` once the run has ended, hold no optimizer, scheduler or
scaler state: a finished run is only restored (resuming it with other settings is
refused), and AdamW's moments would triple the file.

Model selection (``monitor``) only looks at what ``eval_fn`` returns. ``eval_fn`` must score
**held-out videos of the seen (training) classes**; unseen classes never reach the training
loop, otherwise the zero-shot protocol is broken.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from torch import nn
from tqdm.auto import tqdm

from zsar.io import link_or_copy
from zsar.progress import emit
from zsar.seed import seed_everything
from zsar.training import distributed as dist_utils
from zsar.training.checkpoint import (capture_rng_states, checkpoint_path, frozen_digests,
                                      latest_checkpoint, list_checkpoints, load_checkpoint,
                                      prune_checkpoints, restore_rng_states, save_checkpoint,
                                      strip_training_state, unwrap_model)
from zsar.training.distributed import move_to_device
from zsar.training.history import History
from zsar.training.schedule import build_optimizer, build_scheduler

log = logging.getLogger(__name__)

AMP_MODES = ("none", "bf16", "fp16")
CHECKPOINT_DIR = "checkpoints"
BEST_NAME = "best.pt"
LossFn = Callable[[nn.Module, Any], "tuple[torch.Tensor, dict[str, Any]]"]


@dataclass
class OptimConfig:
    """AdamW and schedule settings.

    Attributes:
        lr: peak learning rate.
        weight_decay: decoupled weight decay (not on biases/norms/embeddings/logit_scale).
        warmup: warm-up steps (``int``) or fraction of all steps (``float`` in ``[0, 1)``).
        min_lr_ratio: final learning rate as a fraction of ``lr``.
        betas: AdamW betas.
        no_decay_parts: extra parameter-name substrings excluded from weight decay.
    """

    lr: float = 1e-4
    weight_decay: float = 0.05
    warmup: int | float = 0.1
    min_lr_ratio: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    no_decay_parts: tuple[str, ...] = ()


@dataclass
class FitResult:
    """What :meth:`Trainer.fit` returns."""

    history: History
    run_dir: Path
    last_checkpoint: Path
    best_checkpoint: Path | None = None
    best_epoch: int | None = None
    best_metric: float | None = None
    resumed_from: Path | None = None
    restored_time_s: float = 0.0
    """Recorded ``time_s`` of the epochs restored from ``resumed_from`` (0 for a fresh run): the
    training time a resumed run did not spend itself, so that ``restored_time_s`` plus the
    resumed call's own time is the fit's cost however often it was interrupted."""

    @property
    def final(self) -> dict[str, Any]:
        """The last epoch's metrics row."""
        return self.history[-1]


def autocast(amp: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The autocast context for ``amp`` (``"none"`` | ``"bf16"`` | ``"fp16"``) on ``device``."""
    if amp not in AMP_MODES:
        raise ValueError(f"amp={amp!r} is not one of {AMP_MODES}")
    if amp == "none":
        return contextlib.nullcontext()
    if amp == "fp16" and device.type != "cuda":
        raise ValueError(f"amp='fp16' needs a CUDA device, got {device}; use 'bf16' or 'none'")
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


class Trainer:
    """Train ``model`` with ``loss_fn`` for ``epochs`` epochs; see the module docstring.

    Args:
        model: the model; moved to the device in place, wrapped in DDP under torchrun.
        loss_fn: ``(model, batch) -> (loss, logs)``; ``loss`` a scalar tensor, ``logs`` a dict
            of scalars averaged per epoch as ``train_<name>``. Under DDP ``model`` is the DDP
            wrapper: call ``model(...)`` (its ``forward``) so gradients are synchronised, and
            reach other attributes through :func:`~zsar.training.checkpoint.unwrap_model`.
        train_loader_factory: ``epoch -> iterable of batches``, e.g.
            :class:`~zsar.training.distributed.LoaderFactory`; its order must depend only on
            the epoch for exact resumption.
        epochs: number of epochs.
        run_dir: folder for ``history.csv``, ``history.json`` and ``checkpoints/``.
        optim: :class:`OptimConfig`.
        grad_clip: max global gradient norm (``None``: no clipping).
        amp: ``"none"``, ``"bf16"`` (CPU or CUDA) or ``"fp16"`` (CUDA, with a GradScaler).
        eval_fn: ``(unwrapped_model, epoch) -> dict of scalars`` on seen-class held-out data;
            called in eval mode on **every** rank (so it may use
            :func:`~zsar.training.distributed.extract_features`); rank 0's dict is recorded.
        monitor: key of ``eval_fn``'s dict used to keep ``checkpoints/best.pt``.
        mode: ``"max"`` or ``"min"`` for ``monitor``.
        resume: continue from the latest checkpoint in ``run_dir``; ``False`` deletes the old
            checkpoints there and starts over.
        seed: seeds Python/NumPy/torch (``seed + rank``) at the start of a fresh run.
        progress: tqdm bars: ``None`` only on a terminal, ``True`` always, ``False`` never.
        keep_last: number of epoch checkpoints kept (``None``: all).
        device: default: ``cuda:<local_rank>`` if available, else CPU.
        steps_per_epoch: needed only when the loaders have no ``len``.
        find_unused_parameters: passed to DDP (for models with frozen/unused branches).
        omit_frozen: leave out of the checkpoints the frozen parameters (``requires_grad=False``)
            that still hold their values from the start of the fit (a locked text tower);
            resuming or reloading then needs the model built from the same start, which
            :func:`~zsar.training.checkpoint.load_checkpoint` checks by digest. Frozen tensors
            that change without gradients (an EMA teacher) are always saved.

    Attributes set by :meth:`fit`: ``model_`` (possibly DDP-wrapped), ``optimizer_``,
    ``scheduler_``, ``scaler_``, ``history_``, ``step_``, ``device_``.
    """

    def __init__(self, model: nn.Module, loss_fn: LossFn, train_loader_factory: Callable[[int], Iterable],
                 epochs: int, run_dir: str | os.PathLike, optim: OptimConfig | None = None,
                 grad_clip: float | None = None, amp: str = "none",
                 eval_fn: Callable[[nn.Module, int], dict] | None = None, monitor: str | None = None,
                 mode: str = "max", resume: bool = True, seed: int = 0, progress: bool | None = None,
                 keep_last: int | None = 2, device: torch.device | str | None = None,
                 steps_per_epoch: int | None = None, find_unused_parameters: bool = False,
                 omit_frozen: bool = True):
        self.model = model
        self.loss_fn = loss_fn
        self.train_loader_factory = train_loader_factory
        self.epochs = epochs
        self.run_dir = Path(run_dir)
        self.optim = optim if optim is not None else OptimConfig()
        self.grad_clip = grad_clip
        self.amp = amp
        self.eval_fn = eval_fn
        self.monitor = monitor
        self.mode = mode
        self.resume = resume
        self.seed = seed
        self.progress = progress
        self.keep_last = keep_last
        self.device = device
        self.steps_per_epoch = steps_per_epoch
        self.find_unused_parameters = find_unused_parameters
        self.omit_frozen = omit_frozen

    # ------------------------------------------------------------------ setup
    def _check_args(self) -> None:
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise ValueError(f"epochs must be a positive int, got {self.epochs!r}")
        if self.amp not in AMP_MODES:
            raise ValueError(f"amp={self.amp!r} is not one of {AMP_MODES}")
        if self.mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {self.mode!r}")
        if self.monitor is not None and self.eval_fn is None:
            raise ValueError(f"monitor={self.monitor!r} needs an eval_fn")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ValueError(f"grad_clip must be > 0 or None, got {self.grad_clip}")

    def _count_steps(self) -> int:
        if self.steps_per_epoch is not None:
            return int(self.steps_per_epoch)
        try:
            steps = len(self.train_loader_factory(0))
        except TypeError as err:
            raise TypeError("the train loaders have no len(); pass steps_per_epoch") from err
        if steps < 1:
            raise ValueError(f"the train loader of epoch 0 has no batches (len={steps})")
        return steps

    def _config(self) -> dict[str, Any]:
        """What must match between a checkpoint and a resumed run."""
        return {"epochs": self.epochs, "steps_per_epoch": self.steps_per_epoch_, "seed": self.seed,
                "amp": self.amp, "grad_clip": self.grad_clip,
                "optim": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.optim).items()}}

    def _setup(self) -> None:
        self._check_args()
        info = dist_utils.init_distributed()
        self.device_ = torch.device(self.device) if self.device is not None else info.device
        autocast(self.amp, self.device_)  # fails early for fp16 on CPU
        self.steps_per_epoch_ = self._count_steps()
        model = self.model.to(self.device_)
        if dist_utils.is_distributed():
            ids = [self.device_.index] if self.device_.type == "cuda" else None
            model = nn.parallel.DistributedDataParallel(
                model, device_ids=ids, find_unused_parameters=self.find_unused_parameters)
        self.model_ = model
        # digests of the frozen parameters as built, before a resume loads anything into them
        self.frozen_start_ = frozen_digests(model) if self.omit_frozen else {}
        o = self.optim
        self.optimizer_ = build_optimizer(self.model, o.lr, o.weight_decay, o.betas,
                                          no_decay_parts=o.no_decay_parts)
        self.scheduler_ = build_scheduler(self.optimizer_, self.epochs * self.steps_per_epoch_,
                                          o.warmup, o.min_lr_ratio)
        self.scaler_ = torch.amp.GradScaler("cuda") if self.amp == "fp16" else None
        self.checkpoint_dir_ = self.run_dir / CHECKPOINT_DIR

    # ----------------------------------------------------------------- resume
    def _start_fresh(self) -> None:
        """Seed, and (rank 0) delete checkpoints of an earlier run in the same folder."""
        seed_everything(self.seed + dist_utils.rank(), deterministic=False)
        self.history_, self.step_, self.start_epoch_ = History(), 0, 0
        self.best_epoch_, self.best_metric_ = None, None
        old = list_checkpoints(self.checkpoint_dir_)
        if dist_utils.is_main_process() and old:
            log.warning("resume=False: deleting %d old checkpoints in %s", len(old), self.checkpoint_dir_)
            for path in old + [self.checkpoint_dir_ / BEST_NAME]:
                path.unlink(missing_ok=True)
        dist_utils.barrier()

    def _resume_from(self, path: Path) -> None:
        payload = load_checkpoint(path, self.model, self.optimizer_, self.scheduler_, self.scaler_,
                                  restore_rng=False, allow_missing_training_state=True)
        saved = payload["extra"].get("config", {})
        diff = {k: (saved.get(k), v) for k, v in self._config().items() if saved.get(k) != v}
        if diff:
            raise ValueError(f"cannot resume from {path}: settings differ (saved, now): {diff}; "
                             "use another run_dir or resume=False")
        if payload.get("optimizer") is None and payload["epoch"] + 1 < self.epochs:
            raise ValueError(f"cannot resume from {path}: it holds no optimizer state, and "
                             f"epochs {payload['epoch'] + 1}..{self.epochs - 1} are still to train")
        states = payload["rng_states"]
        if isinstance(states, list) and len(states) == dist_utils.world_size():
            restore_rng_states(states[dist_utils.rank()])
        else:
            log.warning("%s holds RNG states of %s ranks, this run has %d: reseeding", path,
                        len(states) if isinstance(states, list) else "?", dist_utils.world_size())
            seed_everything(self.seed + dist_utils.rank() + payload["epoch"] + 1, deterministic=False)
        self.history_ = History(payload["history"])
        self.step_, self.start_epoch_ = payload["step"], payload["epoch"] + 1
        self.best_epoch_ = payload["extra"].get("best_epoch")
        self.best_metric_ = payload["extra"].get("best_metric")
        if dist_utils.is_main_process():
            self.history_.write(self.run_dir)  # drops rows of an epoch that never got its checkpoint
        log.info("resumed from %s at epoch %d (step %d)", path, self.start_epoch_, self.step_)

    # ------------------------------------------------------------------ epoch
    def _backward_and_step(self, loss: torch.Tensor) -> float | None:
        """Backward, optional clipping, optimizer and scheduler step; return the grad norm."""
        self.optimizer_.zero_grad(set_to_none=True)
        grad_norm = None
        if self.scaler_ is not None:
            self.scaler_.scale(loss).backward()
            self.scaler_.unscale_(self.optimizer_)  # clip the true, unscaled gradients
        else:
            loss.backward()
        if self.grad_clip is not None:
            grad_norm = float(nn.utils.clip_grad_norm_(self.model_.parameters(), self.grad_clip))
        if self.scaler_ is not None:
            self.scaler_.step(self.optimizer_)
            self.scaler_.update()
        else:
            self.optimizer_.step()
        self.scheduler_.step()
        self.step_ += 1
        return grad_norm

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        """One pass over the epoch's loader; return the rank-averaged mean loss and logs."""
        self.model_.train()
        sums: dict[str, float] = defaultdict(float)
        steps, lr = 0, float("nan")
        bar = tqdm(self.train_loader_factory(epoch), total=self.steps_per_epoch_, desc=f"epoch {epoch}",
                   leave=False, disable=dist_utils.tqdm_disable(self.progress))
        for batch in bar:
            with autocast(self.amp, self.device_):
                loss, logs = self.loss_fn(self.model_, move_to_device(batch, self.device_))
            value = float(loss.detach())
            if not math.isfinite(value):
                raise FloatingPointError(f"loss is {value} at epoch {epoch}, step {self.step_}")
            lr = self.optimizer_.param_groups[0]["lr"]
            grad_norm = self._backward_and_step(loss)
            sums["loss"] += value
            if grad_norm is not None:
                sums["grad_norm"] += grad_norm
            for key, log_value in (logs or {}).items():
                sums[key] += float(log_value)
            steps += 1
            bar.set_postfix(loss=f"{value:.4f}", lr=f"{lr:.2e}")
        bar.close()
        if steps == 0:
            raise RuntimeError(f"the train loader of epoch {epoch} yielded no batches")
        # every rank runs the same number of equal-size steps, so the mean of means is the mean
        row = {f"train_{k}": dist_utils.all_reduce_mean(v / steps) for k, v in sums.items()}
        return {"lr": lr, **row}

    def _evaluate(self, epoch: int, row: dict[str, Any]) -> dict[str, Any]:
        if self.eval_fn is None:
            return {}
        model = unwrap_model(self.model_)
        model.eval()
        metrics = dict(self.eval_fn(model, epoch) or {})
        model.train()
        clash = sorted(set(metrics) & (set(row) | {"epoch", "step", "time_s"}))
        if clash:
            raise ValueError(f"eval_fn returned keys {clash} that clash with training columns")
        if self.monitor is not None and self.monitor not in metrics:
            raise KeyError(f"monitor {self.monitor!r} not among eval_fn's keys {sorted(metrics)}")
        return metrics

    def _is_better(self, value: float) -> bool:
        if value is None or not math.isfinite(value):
            return False
        if self.best_metric_ is None:
            return True
        return value > self.best_metric_ if self.mode == "max" else value < self.best_metric_

    # ------------------------------------------------------------------- save
    def _save(self, epoch: int, improved: bool) -> Path:
        """Rank 0 writes the epoch checkpoint (and ``best.pt``); every rank waits for it."""
        # a collective: every rank must call it, before rank 0 writes
        rng_states = dist_utils.all_gather_objects(capture_rng_states())
        path = checkpoint_path(self.checkpoint_dir_, epoch)
        if dist_utils.is_main_process():
            extra = {"config": self._config(), "best_epoch": self.best_epoch_,
                     "best_metric": self.best_metric_, "world_size": dist_utils.world_size()}
            # the final checkpoint drops the optimizer, scheduler and scaler states: a finished
            # run is only ever restored (its epochs cannot change on resume), and AdamW's two
            # moments would double the file (160 MB -> ~55 MB for the default backbone)
            training = (self.optimizer_, self.scheduler_, self.scaler_) if epoch < self.epochs - 1 else (None,) * 3
            save_checkpoint(path, self.model_, *training, epoch, self.step_, rng_states, self.history_.rows, extra,
                            omit=self._unchanged_frozen())
            best = self.checkpoint_dir_ / BEST_NAME
            if improved:
                # a hard link, not a copy: best.pt costs no disk while its epoch file is kept
                link_or_copy(path, best)
            prune_checkpoints(self.checkpoint_dir_, self.keep_last)
            if epoch == self.epochs - 1 and best.exists() and not os.path.samefile(best, path):
                strip_training_state(best)  # an earlier epoch's file, kept only for its weights
            self.history_.write(self.run_dir)
        dist_utils.barrier()
        return path

    def _unchanged_frozen(self) -> dict[str, str]:
        """``{name: digest}`` of the frozen parameters that still hold their starting values."""
        now = frozen_digests(self.model_, self.frozen_start_)
        return {name: digest for name, digest in now.items() if self.frozen_start_.get(name) == digest}

    # -------------------------------------------------------------------- fit
    def fit(self) -> FitResult:
        """Train (or resume) to ``epochs`` epochs and return a :class:`FitResult`."""
        self._setup()
        resumed = latest_checkpoint(self.checkpoint_dir_) if self.resume else None
        if resumed is not None:
            self._resume_from(resumed)
        else:
            self._start_fresh()
        last = resumed
        restored = sum(float(row.get("time_s", 0.0)) for row in self.history_.rows) if resumed else 0.0
        epochs = tqdm(range(self.start_epoch_, self.epochs), initial=self.start_epoch_,
                      total=self.epochs, desc="epochs", disable=dist_utils.tqdm_disable(self.progress))
        for epoch in epochs:
            start = time.perf_counter()
            row = self._train_epoch(epoch)
            metrics = self._evaluate(epoch, row)
            improved = self.monitor is not None and self._is_better(metrics[self.monitor])
            if improved:
                self.best_epoch_, self.best_metric_ = epoch, float(metrics[self.monitor])
            self.history_.append({"epoch": epoch, "step": self.step_, **row, **metrics,
                                  "time_s": time.perf_counter() - start})
            last = self._save(epoch, improved)
            epochs.set_postfix(loss=f"{row['train_loss']:.4f}")
            log.info("epoch %d: %s", epoch, self.history_[-1])
            if dist_utils.is_main_process():
                emit("epoch", epoch=epoch + 1, epochs=self.epochs, run=str(self.run_dir))
        epochs.close()
        if last is None:  # resumed from the final checkpoint: nothing left to train
            last = checkpoint_path(self.checkpoint_dir_, self.epochs - 1)
        best = self.checkpoint_dir_ / BEST_NAME if self.best_epoch_ is not None else None
        return FitResult(self.history_, self.run_dir, last, best, self.best_epoch_,
                         self.best_metric_, resumed, restored)


def fit(model: nn.Module, loss_fn: LossFn, train_loader_factory: Callable[[int], Iterable], epochs: int,
        run_dir: str | os.PathLike, **kwargs: Any) -> FitResult:
    """``Trainer(model, loss_fn, train_loader_factory, epochs, run_dir, **kwargs).fit()``."""
    return Trainer(model, loss_fn, train_loader_factory, epochs, run_dir, **kwargs).fit()
