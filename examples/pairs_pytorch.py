"""Positive pairs from ortholog families in plain PyTorch: a Dataset, a DataLoader and a training loop, no Lightning.

Each item is two different members of one family (orthologs are evolution's augmented views of a gene) and the
family's index; a shuffled batch of families holds one pair per family, so every other row of the batch is a
negative. ``phylocl train`` does the same with more options (distant pairs, length buckets, cached gradients)::

    python examples/pairs_pytorch.py                    # 50 steps on the bundled 10 aphid families
    python examples/pairs_pytorch.py --data DIR --steps 500
"""

from __future__ import annotations

import argparse
import random

import torch
from torch.utils.data import DataLoader, Dataset

import phylocl


class FamilyPairs(Dataset):
    """One item per family with two or more members: ``(member a, member b, family index)``, each member
    cropped to at most ``max_len`` residues at a random place."""

    def __init__(self, dataset, *, max_len: int = 128, seed: int = 0) -> None:
        members: dict[str, list[str]] = {}
        for sequence, family in zip(dataset.sequences, dataset.families):
            members.setdefault(family, []).append(sequence)
        self.families = [m for m in members.values() if len(m) >= 2]
        self.max_len, self.rng = max_len, random.Random(seed)

    def __len__(self) -> int:
        return len(self.families)

    def _crop(self, sequence: str) -> str:
        start = self.rng.randint(0, max(0, len(sequence) - self.max_len))
        return sequence[start:start + self.max_len]

    def __getitem__(self, i: int) -> tuple[str, str, int]:
        a, b = self.rng.sample(self.families[i], 2)
        return self._crop(a), self._crop(b), i


def train(data: str = "datasets/example-mini-mit/protein", *, steps: int = 50, batch_size: int = 8,
          model: str = "gmlp-tiny", seed: int = 0) -> list[float]:
    """Train an untrained ``model`` for ``steps`` steps of InfoNCE on pairs of ``data``; returns the losses."""
    torch.manual_seed(seed)
    dataset = phylocl.read_dataset(data)
    pairs = FamilyPairs(dataset, seed=seed)
    loader = DataLoader(pairs, batch_size=batch_size, shuffle=True, drop_last=True,
                        collate_fn=lambda items: tuple(zip(*items)))  # (a strings, b strings, family indices)
    encoder = phylocl.build_encoder(model, alphabet=dataset.alphabet.name, max_len=pairs.max_len)
    loss_fn = phylocl.InfoNCE(temperature=0.1)
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=1e-3)
    losses: list[float] = []
    while len(losses) < steps:
        for a, b, family in loader:
            z_a = encoder(encoder.tokenize(list(a)))  # (B, D) unit rows
            z_b = encoder(encoder.tokenize(list(b)))  # (B, D)
            loss = loss_fn(z_a, z_b, labels=torch.tensor(family))  # other families in the batch are negatives
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            if len(losses) == steps:
                break
    return losses


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="datasets/example-mini-mit/protein")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    losses = train(args.data, steps=args.steps, batch_size=args.batch_size)
    last = losses[-10:]  # one batch's loss is noisy (8 of 10 families, random crops): the mean of the last 10
    print(f"loss {losses[0]:.3f} at step 1, {sum(last) / len(last):.3f} on average over the last {len(last)} steps")
