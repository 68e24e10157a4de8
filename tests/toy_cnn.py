"""A toy CNN and its drawn task (a bright square, a bright disc or nothing), trained in the
tests so that explanations have a known right answer: where the object is."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

SIZE = 64


class TinyCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 32, 3, padding=1),
            nn.ReLU(),
        )
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.fc = nn.Linear(32, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.features(x)).flatten(1))


def draw(rng: np.random.Generator, kind: int) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """kind 0: a bright square, 1: a bright disc, 2: nothing; noise on a dark background."""
    image = 0.2 + 0.05 * rng.standard_normal((SIZE, SIZE))
    side = 16
    y0, x0 = rng.integers(2, SIZE - side - 2, size=2)
    box = (int(x0), int(y0), int(x0 + side), int(y0 + side))
    if kind == 0:
        image[y0 : y0 + side, x0 : x0 + side] = 1.0
    elif kind == 1:
        yy, xx = np.mgrid[:SIZE, :SIZE]
        cy, cx = y0 + side / 2 - 0.5, x0 + side / 2 - 0.5
        image[(yy - cy) ** 2 + (xx - cx) ** 2 <= (side / 2) ** 2] = 1.0
    tensor = torch.tensor(np.repeat(image[None], 3, axis=0), dtype=torch.float32)
    return tensor, box


def train_toy() -> TinyCNN:
    """TinyCNN trained to tell squares, discs and empty images apart (over 95 % accuracy)."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = TinyCNN()
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(250):
        kinds = rng.integers(0, 3, size=32)
        batch = torch.stack([draw(rng, int(k))[0] for k in kinds])
        loss = nn.functional.cross_entropy(model(batch), torch.tensor(kinds))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    test_rng = np.random.default_rng(123)
    tests = [draw(test_rng, k % 3) for k in range(60)]
    with torch.no_grad():
        predicted = model(torch.stack([t for t, _ in tests])).argmax(1).tolist()
    accuracy = np.mean([p == k % 3 for k, p in enumerate(predicted)])
    assert accuracy > 0.95, f"the toy model did not learn the task ({accuracy:.2f})"
    return model
