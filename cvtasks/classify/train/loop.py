"""The epoch loop: seeded data order and augmentation per epoch (so that a resumed run ends
with the same weights as an uninterrupted one), validation, checkpoints, early stopping."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from torch import nn
from torch.utils.data import DataLoader, RandomSampler, SequentialSampler, WeightedRandomSampler

from cvtasks.classify.metrics import Ranked, report
from cvtasks.classify.train import plots
from cvtasks.classify.train.config import TrainConfig
from cvtasks.classify.train.data import LabelledSet
from cvtasks.classify.train.images import Batch, LabelledImages, Unreadable, collate
from cvtasks.classify.train.model import train_mode
from cvtasks.classify.train.run_folder import (
    LAST,
    RunState,
    append_metrics,
    save_state,
    save_weights,
)
from cvtasks.device import autocast_for
from cvtasks.run_spec import RUN_BEST


@dataclass
class Loop:
    """Everything an epoch needs."""

    cfg: TrainConfig
    precision: str  # resolved (auto -> bf16 or fp32)
    data: LabelledSet
    model: nn.Module
    device: torch.device
    train_set: LabelledImages
    val_set: LabelledImages
    optimizer: torch.optim.Optimizer
    scheduler: Any
    folder: Path
    console: Console
    channels_last: bool
    on_unreadable: Callable[[Unreadable, str], None]
    criterion: nn.Module = field(init=False)
    history: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.criterion = nn.CrossEntropyLoss(label_smoothing=self.cfg.label_smoothing)
        self.scaler = torch.amp.GradScaler("cuda") if self.precision == "fp16" else None

    # ------------------------------------------------------------------ data

    def _loader(self, dataset: LabelledImages, sampler: Any, drop_last: bool) -> DataLoader[Any]:
        return DataLoader(
            dataset,
            batch_size=self.cfg.batch_size,
            sampler=sampler,
            num_workers=self.cfg.workers,
            collate_fn=collate,
            drop_last=drop_last,
            pin_memory=self.device.type == "cuda",
        )

    def train_loader(self, epoch: int) -> DataLoader[Any]:
        """Seeded by (seed, epoch): the order and the workers' augmentation seeds."""
        generator = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + epoch)
        count = len(self.train_set)
        if self.cfg.balance:
            labels = [label for _, label in self.data.train]
            per_class = np.bincount(labels, minlength=len(self.data.classes))
            weights = [1.0 / per_class[label] for label in labels]
            sampler: Any = WeightedRandomSampler(weights, count, generator=generator)
        else:
            sampler = RandomSampler(self.train_set, generator=generator)
        # a last batch of one image would break BatchNorm's training statistics
        return self._loader(self.train_set, sampler, count % self.cfg.batch_size == 1)

    def _inputs(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        assert batch.inputs is not None and batch.targets is not None
        x = batch.inputs.to(self.device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, batch.targets.to(self.device, non_blocking=True)

    # ------------------------------------------------------------------ epochs

    def train_epoch(self, epoch: int, state: RunState) -> dict[str, float]:
        torch.manual_seed(self.cfg.seed * 1_000_003 + epoch)  # augmentation in this process
        train_mode(self.model)
        loader = self.train_loader(epoch)
        seen, correct, loss_sum, started = 0, 0, 0.0, time.perf_counter()
        with _progress(self.console, len(loader), epoch, self.cfg) as advance:
            for batch in loader:
                for bad in batch.unreadable:
                    self.on_unreadable(bad, "train")
                if batch.inputs is None:
                    advance(seen, correct, loss_sum, started)
                    continue
                x, y = self._inputs(batch)
                with autocast_for(self.device, self.precision):
                    logits = self.model(x)
                loss = self.criterion(logits.float(), y)
                self.optimizer.zero_grad(set_to_none=True)
                if self.scaler is not None:
                    self.scaler.scale(loss).backward()
                    self.scaler.step(self.optimizer)
                    self.scaler.update()
                else:
                    loss.backward()
                    self.optimizer.step()
                self.scheduler.step()
                state.step += 1
                seen += len(y)
                correct += int((logits.argmax(1) == y).sum())
                loss_sum += loss.detach().item() * len(y)
                advance(seen, correct, loss_sum, started)
        elapsed = time.perf_counter() - started
        return {
            "train_loss": loss_sum / max(seen, 1),
            "train_top1": correct / max(seen, 1),
            "images_per_s": seen / max(elapsed, 1e-9),
        }

    @torch.no_grad()
    def validate(self) -> tuple[float, list[int], list[Ranked]]:
        """Validation loss, true classes and ranked predictions, in fp32 whatever the training
        precision (probabilities rounded to 1e-6 as classify's records are, so that classify
        and eval on the same images agree)."""
        self.model.eval()
        loader = self._loader(self.val_set, SequentialSampler(self.val_set), drop_last=False)
        truth: list[int] = []
        ranked: list[Ranked] = []
        loss_sum = 0.0
        top = min(5, len(self.data.classes))
        for batch in loader:
            for bad in batch.unreadable:
                self.on_unreadable(bad, "val")
            if batch.inputs is None:
                continue
            x, y = self._inputs(batch)
            logits = self.model(x)  # fp32, as classify runs the saved model by default
            loss_sum += self.criterion(logits.float(), y).item() * len(y)
            probabilities = logits.float().softmax(dim=1)
            scores, indices = probabilities.topk(top, dim=1)
            for row_scores, row_indices in zip(scores.tolist(), indices.tolist(), strict=True):
                pairs = zip(row_indices, row_scores, strict=True)
                ranked.append([(int(i), round(float(s), 6)) for i, s in pairs])
            truth += y.tolist()
        return loss_sum / max(len(truth), 1), truth, ranked

    def run(self, state: RunState) -> RunState:
        """Epochs from ``state.epoch`` to the end (or early stop); checkpoints every epoch."""
        cfg = self.cfg
        for epoch in range(state.epoch, cfg.epochs):
            train = self.train_epoch(epoch, state)
            val_loss, truth, ranked = self.validate()
            metrics = report(truth, ranked, self.data.classes)
            line = {
                "epoch": epoch + 1,
                **{k: round(v, 6) for k, v in train.items()},
                "val_loss": round(val_loss, 6),
                "val_top1": metrics["top1"],
                "val_top5": metrics["top5"],
                "lr": round(self.scheduler.get_last_lr()[0], 8),
                "classes": metrics["classes"],
                "confusion": metrics["confusion"],
            }
            improved = (metrics["top1"], -val_loss) > (state.best_top1, -state.best_loss)
            state.epoch = epoch + 1
            if improved:
                state.best_top1, state.best_loss, state.best_epoch, state.stale = (
                    metrics["top1"], val_loss, epoch + 1, 0,
                )  # fmt: skip
                save_weights(self.model, self.folder / RUN_BEST)
                plots.confusion_png(
                    np.array(metrics["confusion"]),
                    [c["label"] for c in metrics["classes"]],  # past 30: those that occur
                    self.folder / "confusion.png",
                    f"{cfg.model}: validation, best epoch {epoch + 1} "
                    f"(top-1 {metrics['top1']:.3f})",
                )
            else:
                state.stale += 1
            save_weights(self.model, self.folder / LAST)
            save_state(self.folder, state, self.optimizer, self.scheduler)
            append_metrics(self.folder, line)
            self.history.append(line)
            title = f"{cfg.model} on {len(self.data.classes)} classes"
            plots.curves_png(self.history, self.folder / "curves.png", title)
            if not cfg.quiet:
                self.console.print(epoch_line(line, cfg.epochs, state), highlight=False)
            if cfg.patience is not None and state.stale >= cfg.patience:
                self.console.print(
                    f"early stop: no better validation top-1 for {cfg.patience} epoch(s)",
                    highlight=False,
                )
                break
        return state


def epoch_line(line: dict[str, Any], epochs: int, state: RunState) -> str:
    return (
        f"epoch {line['epoch']}/{epochs}  train loss {line['train_loss']:.4f} "
        f"top-1 {line['train_top1']:.3f} | val loss {line['val_loss']:.4f} "
        f"top-1 {line['val_top1']:.3f} | {line['images_per_s']:.0f} img/s | "
        f"best {state.best_top1:.3f} (epoch {state.best_epoch})"
    )


@contextmanager
def _progress(
    console: Console, total: int, epoch: int, cfg: TrainConfig
) -> Iterator[Callable[[int, int, float, float], None]]:
    """A progress bar per epoch (loss, accuracy, images/s, ETA) on a terminal."""
    if cfg.quiet or not console.is_terminal:
        yield lambda *args: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn(f"epoch {epoch + 1}/{cfg.epochs}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[status]}"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("train", total=total, status="")

        def advance(seen: int, correct: int, loss_sum: float, started: float) -> None:
            rate = seen / max(time.perf_counter() - started, 1e-9)
            status = (
                f"loss {loss_sum / max(seen, 1):.3f} top-1 {correct / max(seen, 1):.3f} "
                f"{rate:.0f} img/s"
            )
            progress.update(task, advance=1, status=status)

        yield advance
