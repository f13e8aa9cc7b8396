"""Training: schedule shape, parameter groups, atomic checkpoints, exact resume, AMP on CPU.

Everything runs on a toy MLP (:mod:`zsar.training.toy`) on CPU with one intra-op thread, so
that runs are bit-for-bit reproducible and fast on a shared machine.
"""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from zsar.training import (History, LoaderFactory, OptimConfig, Trainer, WarmupCosine,
                           build_optimizer, build_scheduler, capture_rng_states, checkpoint_path,
                           fit, latest_checkpoint, load_checkpoint, param_groups,
                           resolve_warmup_steps, save_checkpoint)
from zsar.training.checkpoint import strip_training_state
from zsar.training.schedule import fused_supported
from zsar.training.toy import ToyDataset, ToyModel, toy_eval_fn, toy_loss

SINGLE_THREAD_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: identical float results in-process and in subprocesses."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ------------------------------------------------------------------------------- schedule
def test_warmup_then_cosine_to_zero():
    schedule = WarmupCosine(total_steps=100, warmup_steps=10)
    values = np.array([schedule(s) for s in range(100)])
    assert values[0] == pytest.approx(0.1) and values[9] == pytest.approx(1.0)
    assert np.all(np.diff(values[:10]) > 0), "warm-up must rise linearly"
    assert np.allclose(np.diff(values[:10]), 0.1)
    assert np.all(np.diff(values[9:]) <= 1e-12), "cosine must not increase"
    assert values[55] == pytest.approx(0.5, abs=1e-9)  # half-way through the decay
    assert values[-1] < 1e-3 and schedule(100) == pytest.approx(0.0)


def test_scheduler_steps_the_optimizer_learning_rate():
    model = nn.Linear(3, 2)
    optimizer = build_optimizer(model, lr=0.1, weight_decay=0.0)
    scheduler = build_scheduler(optimizer, total_steps=20, warmup=0.2, min_ratio=0.1)
    lrs = []
    for _ in range(20):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[0] == pytest.approx(0.025) and max(lrs) == pytest.approx(0.1)
    assert lrs[3] == pytest.approx(0.1) and lrs[-1] == pytest.approx(0.01, abs=2e-3)
    # the schedule object is saved with the scheduler (a callable object, not a lambda)
    assert scheduler.state_dict()["lr_lambdas"][0]["total_steps"] == 20


@pytest.mark.parametrize("warmup, expected", [(0, 0), (5, 5), (0.1, 10), (0.25, 25)])
def test_resolve_warmup_steps(warmup, expected):
    assert resolve_warmup_steps(warmup, 100) == expected


@pytest.mark.parametrize("warmup", [1.5, -1, 101])
def test_bad_warmup_names_the_value(warmup):
    with pytest.raises(ValueError, match=str(warmup)):
        resolve_warmup_steps(warmup, 100)


def test_no_weight_decay_on_biases_norms_embeddings_and_logit_scale():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(10, 4)
            self.positional_embedding = nn.Parameter(torch.zeros(5, 4))
            self.proj = nn.Linear(4, 4)
            self.norm = nn.LayerNorm(4)
            self.logit_scale = nn.Parameter(torch.ones(()))
            self.frozen = nn.Linear(4, 4)
            self.frozen.requires_grad_(False)

    decay, no_decay = param_groups(Net(), weight_decay=0.2)
    assert decay["weight_decay"] == 0.2 and no_decay["weight_decay"] == 0.0
    assert decay["names"] == ["proj.weight"]
    assert sorted(no_decay["names"]) == sorted(["embed.weight", "positional_embedding", "proj.bias",
                                                "norm.weight", "norm.bias", "logit_scale"])


# ----------------------------------------------------------------------------- checkpoints
def _train_a_little(model, optimizer, scheduler, steps=3):
    for _ in range(steps):
        loss = model(torch.randn(4, 3)).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()


def test_fused_adamw_on_cpu_matches_the_per_tensor_loop_and_shares_its_state_format():
    torch.manual_seed(0)
    ref_model = nn.Sequential(nn.Linear(5, 8), nn.LayerNorm(8), nn.Linear(8, 3))
    fused_model = copy.deepcopy(ref_model)
    reference = build_optimizer(ref_model, lr=0.05, fused=False)
    fused = build_optimizer(fused_model, lr=0.05)  # the default picks the fused kernel on the CPU
    assert fused.defaults["fused"] is True and not reference.defaults["fused"]
    inputs = torch.randn(16, 5)
    for _ in range(5):
        for model, optimizer in ((ref_model, reference), (fused_model, fused)):
            optimizer.zero_grad()
            model(inputs).pow(2).mean().backward()
            optimizer.step()
    for a, b in zip(ref_model.parameters(), fused_model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    # a checkpoint of either loads into the other (runs saved before the switch still resume)
    reference.load_state_dict(fused.state_dict())
    fused.load_state_dict(reference.state_dict())
    assert not fused_supported([torch.zeros(2, dtype=torch.int64)]) and not fused_supported([])


def test_checkpoint_round_trip_restores_everything(tmp_path):
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    optimizer = build_optimizer(model, lr=0.1)
    scheduler = build_scheduler(optimizer, total_steps=10, warmup=2)
    _train_a_little(model, optimizer, scheduler)
    loader_gen = torch.Generator().manual_seed(7)
    np.random.seed(3)
    path = save_checkpoint(tmp_path / "ck.pt", model, optimizer, scheduler, epoch=2, step=3,
                           rng_states=capture_rng_states({"loader": loader_gen}),
                           history=[{"epoch": 0, "loss": 1.0}], extra={"note": "x"})
    expected = (torch.rand(3), np.random.rand(), torch.rand(2, generator=loader_gen))

    torch.manual_seed(99)
    model2 = nn.Linear(3, 2)
    optimizer2 = build_optimizer(model2, lr=0.1)
    scheduler2 = build_scheduler(optimizer2, total_steps=10, warmup=2)
    gen2 = torch.Generator().manual_seed(123)
    payload = load_checkpoint(path, model2, optimizer2, scheduler2, generators={"loader": gen2})
    assert (payload["epoch"], payload["step"], payload["extra"]) == (2, 3, {"note": "x"})
    assert payload["history"] == [{"epoch": 0, "loss": 1.0}]
    assert torch.equal(model.weight, model2.weight)
    assert scheduler2.get_last_lr() == scheduler.get_last_lr()
    assert torch.equal(optimizer2.state_dict()["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])
    got = (torch.rand(3), np.random.rand(), torch.rand(2, generator=gen2))
    assert torch.equal(got[0], expected[0]) and got[1] == expected[1] and torch.equal(got[2], expected[2])


def test_failed_write_leaves_previous_checkpoint_intact(tmp_path, monkeypatch):
    model = nn.Linear(3, 2)
    good = save_checkpoint(checkpoint_path(tmp_path, 0), model, epoch=0)
    before = good.read_bytes()

    def torn_save(obj, f, *args, **kwargs):  # dies half-way through writing, like a kill
        with open(f, "wb") as handle:
            handle.write(b"PK\x03\x04 truncated")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", torn_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(good, nn.Linear(3, 2), epoch=1)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(checkpoint_path(tmp_path, 1), nn.Linear(3, 2), epoch=1)
    monkeypatch.undo()
    assert good.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch_0000.pt"], "no temp file is left behind"
    assert latest_checkpoint(tmp_path) == good
    assert load_checkpoint(good)["epoch"] == 0


def test_latest_checkpoint_picks_the_highest_epoch(tmp_path):
    assert latest_checkpoint(tmp_path / "missing") is None
    for epoch in (2, 10, 9):
        save_checkpoint(checkpoint_path(tmp_path, epoch), nn.Linear(1, 1), epoch=epoch)
    (tmp_path / ".epoch_0011.tmp.pt").write_bytes(b"half")  # a temp file of a killed save
    assert latest_checkpoint(tmp_path).name == "epoch_0010.pt"
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_checkpoint(tmp_path / "nope.pt")


# --------------------------------------------------------------------------------- resume
class Interrupt(Exception):
    """Stands in for a kill in the middle of an epoch."""


def _toy_fit(run_dir, epochs=4, interrupt_at=None, init_seed=0, **kwargs):
    torch.manual_seed(init_seed)
    model = ToyModel(dropout=0.2)  # dropout: resumption must also restore the torch RNG
    held_out = ToyDataset(24, split=1)
    evaluate = toy_eval_fn(held_out)

    def eval_fn(m, epoch):
        if epoch == interrupt_at:
            raise Interrupt(epoch)
        return evaluate(m, epoch)

    result = fit(model, toy_loss, LoaderFactory(ToyDataset(64), 16, seed=5), epochs, run_dir,
                 optim=OptimConfig(lr=3e-3, warmup=2), grad_clip=1.0, eval_fn=eval_fn,
                 monitor="val_top1", seed=5, progress=False, **kwargs)
    return model, result


def _comparable(history):
    return [{k: v for k, v in row.items() if k != "time_s"} for row in history]


def test_resume_after_interruption_matches_uninterrupted_run(tmp_path):
    model_a, result_a = _toy_fit(tmp_path / "a")

    with pytest.raises(Interrupt):  # killed while finishing epoch 2: epochs 0 and 1 are saved
        _toy_fit(tmp_path / "b", interrupt_at=2)
    assert latest_checkpoint(tmp_path / "b" / "checkpoints").name == "epoch_0001.pt"
    assert len(History.read(tmp_path / "b")) == 2
    # new objects, different initial weights and global RNG: all must come from the checkpoint
    torch.manual_seed(1234)
    np.random.seed(1234)
    model_b, result_b = _toy_fit(tmp_path / "b", init_seed=42)

    assert result_b.resumed_from.name == "epoch_0001.pt"
    # the resumed run knows what the restored epochs cost (their recorded time); a fresh one 0
    assert result_a.restored_time_s == 0.0
    assert result_b.restored_time_s == pytest.approx(sum(r["time_s"] for r in result_b.history.rows[:2]))
    assert result_b.restored_time_s > 0
    for key, value in model_a.state_dict().items():
        assert torch.equal(value, model_b.state_dict()[key]), key  # exact on CPU
    assert _comparable(result_a.history) == _comparable(result_b.history)
    assert (result_a.best_epoch, result_a.best_metric) == (result_b.best_epoch, result_b.best_metric)
    assert _comparable(History.read(tmp_path / "b")) == _comparable(result_a.history)
    assert (tmp_path / "b" / "history.csv").read_text().splitlines()[0].startswith("epoch,step,lr,train_loss")


def test_resume_after_sigkill_in_a_new_process(tmp_path):
    run = [sys.executable, "-m", "zsar.training.toy", "--epochs", "4", "--dropout", "0.1"]
    full = subprocess.run(run + ["--run-dir", str(tmp_path / "full")], env=SINGLE_THREAD_ENV,
                          capture_output=True, text=True, timeout=120)
    assert full.returncode == 0, full.stderr
    killed = subprocess.run(run + ["--run-dir", str(tmp_path / "kill"), "--kill-at-epoch", "2"],
                            env=SINGLE_THREAD_ENV, capture_output=True, text=True, timeout=120)
    assert killed.returncode == -9, killed.stderr
    resumed = subprocess.run(run + ["--run-dir", str(tmp_path / "kill")], env=SINGLE_THREAD_ENV,
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    a, b = (json.loads((tmp_path / d / "result.json").read_text()) for d in ("full", "kill"))
    a["final"].pop("time_s"), b["final"].pop("time_s")
    assert a == b
    wa, wb = (torch.load(tmp_path / d / "final_model.pt") for d in ("full", "kill"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_mismatched_settings_refuse_to_resume(tmp_path):
    _toy_fit(tmp_path, epochs=1)
    with pytest.raises(ValueError, match="epochs"):
        _toy_fit(tmp_path, epochs=2)
    _, fresh = _toy_fit(tmp_path, epochs=2, resume=False)  # starts over instead
    assert fresh.resumed_from is None and len(fresh.history) == 2


def test_resuming_a_finished_run_trains_nothing(tmp_path):
    _, first = _toy_fit(tmp_path, epochs=2)
    _, again = _toy_fit(tmp_path, epochs=2)
    assert _comparable(again.history) == _comparable(first.history)
    assert again.last_checkpoint.name == "epoch_0001.pt"
    assert again.restored_time_s == pytest.approx(sum(r["time_s"] for r in first.history.rows))


def test_the_final_checkpoint_keeps_no_optimizer_state(tmp_path):
    """A finished run is only restored: its last file drops AdamW's moments (a third of the size)."""
    _, result = _toy_fit(tmp_path, epochs=3, keep_last=None)
    files = [checkpoint_path(tmp_path / "checkpoints", e) for e in range(3)]
    payloads = [torch.load(f, weights_only=True) for f in files]
    assert [p["optimizer"] is None for p in payloads] == [False, False, True]
    assert payloads[2]["scheduler"] is None and payloads[2]["model"].keys() == payloads[1]["model"].keys()
    assert files[2].stat().st_size < files[1].stat().st_size
    _, again = _toy_fit(tmp_path, epochs=3, keep_last=None)  # a finished run still resumes (trains nothing)
    assert again.resumed_from == files[2] and _comparable(again.history) == _comparable(result.history)
    # a file without optimizer state cannot continue a run that has epochs left
    files[2].unlink()
    torch.save({**payloads[1], "optimizer": None}, files[1])
    with pytest.raises(ValueError, match="no optimizer state"):
        _toy_fit(tmp_path, epochs=3, keep_last=None)


def _frozen_body_fit(run_dir, interrupt_at=None, perturb=False, ema=False, **kwargs):
    """A toy fit whose first layer is frozen (a locked tower), resumable like ``_toy_fit``."""
    torch.manual_seed(0)
    model = ToyModel()
    model.body[0].requires_grad_(False)
    if perturb:  # the trainable part must come from the checkpoint
        with torch.no_grad():
            model.head.weight.add_(1.0)
    evaluate = toy_eval_fn(ToyDataset(24, split=1))

    def eval_fn(m, epoch):
        if ema:  # a frozen tensor that changes without gradients, like an EMA teacher
            with torch.no_grad():
                m.body[0].bias.mul_(0.9)
        if epoch == interrupt_at:
            raise Interrupt(epoch)
        return evaluate(m, epoch)

    fit(model, toy_loss, LoaderFactory(ToyDataset(64), 16, seed=5), 3, run_dir,
        optim=OptimConfig(lr=3e-3), eval_fn=eval_fn, monitor="val_top1", seed=5, progress=False,
        keep_last=None, **kwargs)
    return model


def test_frozen_parameters_at_their_start_stay_out_of_checkpoints_and_resume_exactly(tmp_path):
    full = _frozen_body_fit(tmp_path / "a")
    payload = torch.load(checkpoint_path(tmp_path / "a" / "checkpoints", 1), weights_only=True)
    assert sorted(payload["omitted"]) == ["body.0.bias", "body.0.weight"]
    assert "body.0.weight" not in payload["model"] and "head.weight" in payload["model"]
    _frozen_body_fit(tmp_path / "a_all", omit_frozen=False)
    every = torch.load(checkpoint_path(tmp_path / "a_all" / "checkpoints", 1), weights_only=True)
    assert every["omitted"] == {} and every["model"].keys() == full.state_dict().keys()

    with pytest.raises(Interrupt):
        _frozen_body_fit(tmp_path / "b", interrupt_at=2)
    resumed = _frozen_body_fit(tmp_path / "b", perturb=True)
    for key, value in full.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key

    other = ToyModel()  # another start: its frozen layer is not the one the file leaves out
    with pytest.raises(ValueError, match="leaves out 2 frozen tensors"):
        load_checkpoint(checkpoint_path(tmp_path / "a" / "checkpoints", 2), other)
    with torch.no_grad():
        other.body[0].weight.copy_(full.body[0].weight), other.body[0].bias.copy_(full.body[0].bias)
    load_checkpoint(checkpoint_path(tmp_path / "a" / "checkpoints", 2), other)  # a plain model loads it
    assert all(torch.equal(v, other.state_dict()[k]) for k, v in full.state_dict().items())


def test_a_frozen_tensor_that_changed_without_gradients_is_saved(tmp_path):
    model = _frozen_body_fit(tmp_path, ema=True)
    payload = torch.load(checkpoint_path(tmp_path / "checkpoints", 2), weights_only=True)
    assert list(payload["omitted"]) == ["body.0.weight"]
    assert torch.equal(payload["model"]["body.0.bias"], model.body[0].bias)


# ------------------------------------------------------------------------------ AMP, misc
def test_bf16_autocast_on_cpu_trains_and_records(tmp_path):
    torch.manual_seed(0)
    result = fit(ToyModel(), toy_loss, LoaderFactory(ToyDataset(64), 16, seed=0), 2, tmp_path,
                 optim=OptimConfig(lr=3e-3, warmup=0), amp="bf16", eval_fn=toy_eval_fn(ToyDataset(24, split=1)),
                 monitor="val_top1", progress=False, keep_last=1)
    losses = [row["train_loss"] for row in result.history]
    assert all(math.isfinite(v) for v in losses) and losses[1] < losses[0]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["best.pt", "epoch_0001.pt"]
    rows = json.loads((tmp_path / "history.json").read_text())
    assert [r["epoch"] for r in rows] == [0, 1] and {"lr", "val_top1", "time_s"} <= set(rows[0])


def test_best_checkpoint_of_an_earlier_epoch_is_stripped_at_the_end(tmp_path):
    """best.pt of an earlier epoch keeps its weights but not the optimizer state once the run ends."""
    torch.manual_seed(0)
    result = fit(ToyModel(), toy_loss, LoaderFactory(ToyDataset(32), 16, seed=0), 3, tmp_path,
                 eval_fn=lambda model, epoch: {"score": [0.9, 0.1, 0.5][epoch]}, monitor="score",
                 progress=False, keep_last=1)
    best = torch.load(result.best_checkpoint, weights_only=True)
    assert result.best_epoch == 0 and best["epoch"] == 0 and best["optimizer"] is None
    restored = ToyModel()
    load_checkpoint(result.best_checkpoint, restored, restore_rng=False)  # the weights are all there
    assert not strip_training_state(result.best_checkpoint)  # nothing left to drop


def test_best_checkpoint_is_a_link_that_outlives_pruning(tmp_path):
    """best.pt is a hard link to its epoch file (no second copy on disk) and survives its pruning."""
    ckpt = tmp_path / "checkpoints"
    seen = {}

    def eval_fn(model, epoch):
        if epoch == 2:  # before epoch 2 is saved: best.pt (epoch 1) and epoch_0001.pt are one file
            seen["linked"] = os.path.samefile(ckpt / "best.pt", ckpt / "epoch_0001.pt")
        return {"score": [0.1, 0.9, 0.5][epoch]}

    torch.manual_seed(0)
    result = fit(ToyModel(), toy_loss, LoaderFactory(ToyDataset(32), 16, seed=0), 3, tmp_path,
                 eval_fn=eval_fn, monitor="score", progress=False, keep_last=1)
    assert seen == {"linked": True}
    assert sorted(p.name for p in ckpt.iterdir()) == ["best.pt", "epoch_0002.pt"]
    assert result.best_epoch == 1 and os.stat(result.best_checkpoint).st_nlink == 1
    payload = load_checkpoint(result.best_checkpoint, ToyModel(), restore_rng=False)
    assert payload["epoch"] == 1 and payload["extra"]["best_metric"] == pytest.approx(0.9)


def test_fp16_on_cpu_and_bad_arguments_fail_early(tmp_path):
    factory = LoaderFactory(ToyDataset(32), 16)
    with pytest.raises(ValueError, match="fp16"):
        fit(ToyModel(), toy_loss, factory, 1, tmp_path, amp="fp16", device="cpu", progress=False)
    with pytest.raises(ValueError, match="'int8'"):
        fit(ToyModel(), toy_loss, factory, 1, tmp_path, amp="int8", progress=False)
    with pytest.raises(ValueError, match="monitor='top1'"):
        Trainer(ToyModel(), toy_loss, factory, 1, tmp_path, monitor="top1").fit()


def test_non_finite_loss_names_epoch_and_step(tmp_path):
    def nan_loss(model, batch):
        return model(batch["video"]).sum() * float("nan"), {}

    with pytest.raises(FloatingPointError, match="epoch 0, step 0"):
        fit(ToyModel(), nan_loss, LoaderFactory(ToyDataset(32), 16), 1, tmp_path, progress=False)
