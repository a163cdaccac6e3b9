"""`python -m intent_llm train`: generate the data, fine-tune, save, evaluate.

The model is an ensemble of `members` runs that differ only in their seed: member k uses
seed + k for everything that is random (the generated examples, the LoRA and head
initialisation, dropout and batch order), so member 0 is the run a single-model training
with that seed gives. With the same seed, member count, package versions and thread count
the command reproduces the shipped model.
"""

from __future__ import annotations

import json
import random
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..featurize import build_corrector
from ..fields import ENUM_HEADS, head_labels
from ..memory import return_freed_tensors_to_the_os
from ..model import (
    HEADS,
    Encoded,
    IntentNet,
    collate,
    encode,
    load_encoder,
    load_tokenizer,
    lora_config,
    save_member,
)
from ..normalize import SpellingCorrector
from .dataset import Sample, to_samples
from .evaluate import save_scores, score_all
from .generator import generate
from .vocabulary import domain_vocabulary

MODEL_DIR = Path(__file__).parent.parent / "model"


@dataclass
class TrainConfig:
    seed: int = 0
    members: int = 2  # trained with seeds seed, seed + 1, ...; their probabilities are averaged
    train_examples: int = 18000
    heldout_examples: int = 1000
    epochs: int = 3
    batch_size: int = 32
    lora_rank: int = 8
    lora_alpha: int = 16
    lr_lora: float = 1e-3
    lr_heads: float = 2e-3
    warmup: float = 0.05
    label_smoothing: float = 0.05
    # The shipped model was trained with two threads (a 2-core machine, otherwise idle); on a
    # busy machine use one. The thread count is part of what reproduces a run.
    threads: int = 2
    max_steps: int = 0  # > 0 stops early (for quick experiments)


def _log(message: str) -> None:
    print(message, flush=True)


def _batches(encoded: list[Encoded], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar length (less padding), in shuffled order."""
    order = list(range(len(encoded)))
    rng.shuffle(order)
    batches = []
    chunk = batch_size * 50
    for start in range(0, len(order), chunk):
        block = sorted(order[start : start + chunk], key=lambda index: len(encoded[index].ids))
        batches += [block[i : i + batch_size] for i in range(0, len(block), batch_size)]
    rng.shuffle(batches)
    return batches


def _targets(samples: list[Sample]) -> dict[str, torch.Tensor]:
    targets = {"intent": torch.tensor([s.intent for s in samples])}
    for head in ENUM_HEADS:
        targets[head] = torch.tensor([s.heads[head] for s in samples])
    targets["fixed"] = torch.tensor(np.stack([s.fixed for s in samples]))
    searching = ENUM_HEADS["hpo.enabled"].index("true")
    targets["searching"] = torch.tensor([s.heads["hpo.enabled"] == searching for s in samples])
    targets["spans"] = torch.tensor([label for s in samples for label in s.spans], dtype=torch.long)
    return targets


def train_neural(
    samples: list[Sample], config: TrainConfig, seed: int
) -> tuple[IntentNet, dict[str, torch.Tensor]]:
    from peft import get_peft_model, get_peft_model_state_dict

    torch.manual_seed(seed)
    tokenizer = load_tokenizer()
    encoded = [encode(tokenizer, sample.prepared) for sample in samples]
    with warnings.catch_warnings():  # peft calls a transformers method deprecated in v5
        warnings.simplefilter("ignore", FutureWarning)
        encoder = get_peft_model(load_encoder(), lora_config(config.lora_rank, config.lora_alpha))
    net = IntentNet(encoder)
    lora_params = [p for n, p in net.named_parameters() if p.requires_grad and n.startswith("encoder.")]
    head_params = [p for n, p in net.named_parameters() if not n.startswith("encoder.")]
    optimizer = torch.optim.AdamW(
        [{"params": lora_params, "lr": config.lr_lora}, {"params": head_params, "lr": config.lr_heads}],
        weight_decay=0.01,
    )
    rng = random.Random(seed)
    steps_per_epoch = -(-len(samples) // config.batch_size)
    total = steps_per_epoch * config.epochs if not config.max_steps else config.max_steps
    warmup = max(1, int(total * config.warmup))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (total - step) / max(1, total - warmup)))
    )
    cross_entropy = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    binary = nn.BCEWithLogitsLoss()
    step = 0
    started = time.time()
    net.train()
    for epoch in range(config.epochs):
        running = 0.0
        for batch_indices in _batches(encoded, config.batch_size, rng):
            batch = collate([encoded[i] for i in batch_indices], pad_to=16)
            targets = _targets([samples[i] for i in batch_indices])
            out = net(batch)
            loss = sum(cross_entropy(out[name], targets[name]) for name in HEADS) / len(HEADS) * 4
            searching = targets["searching"]
            if searching.any():  # which fields a search keeps fixed only means something in a search
                loss = loss + 2 * binary(out["fixed"][searching], targets["fixed"][searching])
            if targets["spans"].numel():
                loss = loss + 2 * cross_entropy(out["spans"], targets["spans"])
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            step += 1
            running += loss.item()
            if step % 100 == 0:
                _log(
                    f"  epoch {epoch + 1} step {step}/{total} loss {running / 100:.4f} ({time.time() - started:.0f} s)"
                )
                running = 0.0
            if config.max_steps and step >= config.max_steps:
                break
        if config.max_steps and step >= config.max_steps:
            break
    net.eval()
    adapter = get_peft_model_state_dict(encoder)
    return net, adapter


def member_name(seed: int) -> str:
    return f"seed-{seed}"


def train_member(
    config: TrainConfig, seed: int, corrector: SpellingCorrector, directory: Path
) -> dict[str, int]:
    """Generate one member's data, fine-tune it and save it to `directory`."""
    random.seed(seed)  # torch is seeded by train_neural
    np.random.seed(seed)
    started = time.time()
    _log(f"member {directory.name}: generating {config.train_examples} training examples (seed {seed})")
    examples = generate(config.train_examples, seed, "train")
    samples, dropped = to_samples(examples, corrector)
    _log(
        f"  {len(samples)} samples ({dropped} dropped: numbers not read back) in {time.time() - started:.0f} s"
    )
    _log(f"fine-tuning MiniLM + LoRA (r={config.lora_rank}) for {config.epochs} epochs")
    net, adapter = train_neural(samples, config, seed)
    save_member(directory, net, adapter)
    _log(f"  done at {time.time() - started:.0f} s")
    return {"samples": len(samples), "dropped": dropped, "seconds": round(time.time() - started)}


def train(config: TrainConfig, directory: Path = MODEL_DIR) -> list[dict[str, Any]]:
    """Train every member, save the model to `directory`, and return its scores on every evaluation set."""
    return_freed_tensors_to_the_os()
    torch.set_num_threads(config.threads)
    started = time.time()
    domain = domain_vocabulary()
    corrector = build_corrector(domain)
    members = {}
    for seed in range(config.seed, config.seed + config.members):
        members[member_name(seed)] = train_member(config, seed, corrector, directory / member_name(seed))
        return_freed_tensors_to_the_os()
    config_json = {
        "lora": {
            "rank": config.lora_rank,
            "alpha": config.lora_alpha,
            "targets": sorted(lora_config(1, 1).target_modules),
        },
        "domain_vocabulary": domain,
        "labels": head_labels(),  # what each head's outputs mean; the parser decodes with these
        "members": members,
        "training": {**asdict(config), "seconds": round(time.time() - started)},
    }
    (directory / "config.json").write_text(
        json.dumps(config_json, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )

    from ..configuration import DEFAULT_THREADS
    from ..loading import load_parser

    torch.set_num_threads(DEFAULT_THREADS)  # score as `python -m intent_llm eval` does by default
    parser = load_parser(directory)
    reports = score_all(parser.parse_json, config.seed, config.heldout_examples)
    save_scores(reports, directory / "scores.json")
    _log(f"trained in {time.time() - started:.0f} s")
    return [report.summary() for report in reports]
