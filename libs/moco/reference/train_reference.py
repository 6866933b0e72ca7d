#!/usr/bin/python3
"""MoCo learning reference on Fashion-MNIST (PyTorch, CPU). Defines the recipe the TypeScript
`npm run train:local -- --dataset fashion-mnist ...` run must match (kNN within 1.5 points).

Usage: /usr/bin/python3 libs/moco/reference/train_reference.py --epochs 5 --train-limit 20000 \\
           --test-limit 10000 --width 16 [--json]

Recipe (every default below is an argparse option):
- Data: the first `--train-limit` training images and first `--test-limit` test images, in file
  order, from the idx gz files. Pixels are x/255; mean and std (population std, scalars) are
  computed over every pixel of the used training subset and used by Normalize everywhere.
- Model: ResNet (moco_model.ResNet, torchvision names and init), CIFAR stem (3x3 conv, stride 1,
  no max-pool), in_channels 1, head `--head` (v1: fc features -> dim; v2: Linear(features,
  features), ReLU, Linear(features, dim)), SplitBatchNorm with `--bn-splits` in both encoders
  (PyTorch BN momentum 0.1, eps 1e-5). Key encoder = copy of the query encoder.
- Augmentation ("gray"), two independent draws per image for x_q and x_k, applied per image to
  the float image in [0, 1] (so no 8-bit rounding between ops):
    RandomResizedCrop(28, scale=(0.2, 1), ratio=(3/4, 4/3), bilinear)
    -> with p=0.8 ColorJitter(brightness=0.4, contrast=0.4) (factors U[0.6, 1.4], the two ops in
       random order, each clamped to [0, 1]; contrast blends with the image's mean)
    -> RandomHorizontalFlip(0.5) -> Normalize(mean, std).
- Training: SGD(lr, momentum 0.9, weight_decay wd) over all query-encoder parameters; lr set at
  the start of epoch e (0-based) to lr * 0.5 * (1 + cos(pi * e / epochs)); the training subset
  is reshuffled every epoch and the last short batch dropped; queue randn(dim, K) normalised per
  column; one MoCo step as PARITY.md (momentum update, query, shuffle-BN keys with a fresh random
  permutation, logits / T, cross-entropy, SGD, enqueue). Everything random comes from the global
  torch RNG seeded with `--seed`.
- kNN monitor: query-encoder backbone features (global-average-pooled, before fc) in eval mode
  (BN running stats), L2-normalised; bank = un-augmented normalised training subset; per test
  image the top k cosine neighbours vote with weight exp(sim / t) per class, argmax wins.

Output, one JSON object per line on stdout (flushed): {"random_init_knn"}, {"raw_pixel_knn"},
then per epoch {"epoch", "loss", "lr", "images_per_s", "knn_acc", "seconds", "aug_seconds"},
then {"final_knn", "epochs", "config", "total_seconds"}. `images_per_s` counts MoCo steps only
(forward, backward, update, enqueue; no augmentation, no kNN); `seconds` is the whole epoch
including augmentation (`aug_seconds`) and the kNN evaluation. Without `--json`, human-readable
progress lines starting with "# " are interleaved.
"""

import argparse
import gzip
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms as T

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from moco_model import MoCo, ResNet, cosine_lr, init_weights, random_queue, train_step  # noqa: E402

DATA_DIR = "/usr/share/datasets/fashion-mnist"
NUM_CLASSES = 10


# ---- data ----------------------------------------------------------------------------------

def read_idx(path):
    """Parse an idx(.gz) file: big-endian magic (0, 0, dtype code, ndim), ndim uint32 sizes,
    then the raw array. Fashion-MNIST uses dtype code 0x08 (uint8) only."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not a uint8 idx file")
    ndim = raw[3]
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_split(data_dir, prefix, limit):
    images = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"))[:limit]
    labels = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))[:limit]
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)  # [N, 1, 28, 28]
    return x, torch.from_numpy(labels.astype(np.int64))


def gray_augmentation(mean, std):
    return T.Compose([
        T.RandomResizedCrop(28, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3),
                            interpolation=T.InterpolationMode.BILINEAR),
        T.RandomApply([T.ColorJitter(brightness=0.4, contrast=0.4)], p=0.8),
        T.RandomHorizontalFlip(0.5),
        T.Normalize((mean,), (std,)),
    ])


def augment(aug, images):
    return torch.stack([aug(img) for img in images])


# ---- kNN monitor ---------------------------------------------------------------------------

@torch.no_grad()
def embed(encoder, x, batch=1000):
    """L2-normalised backbone features in eval mode (BN running statistics)."""
    was_training = encoder.training
    encoder.eval()
    feats = torch.cat([F.normalize(encoder.features(x[i:i + batch]), dim=1)
                       for i in range(0, len(x), batch)])
    encoder.train(was_training)
    return feats


@torch.no_grad()
def knn_accuracy(test_f, test_y, bank_f, bank_y, k, t, chunk=500):
    """Weighted kNN vote (MoCo CIFAR demo): top-k cosine neighbours, weight exp(sim / t)."""
    k = min(k, len(bank_f))
    correct = 0
    for i in range(0, len(test_f), chunk):
        sims = test_f[i:i + chunk] @ bank_f.t()
        top_sim, top_idx = sims.topk(k, dim=1)
        scores = torch.zeros(len(top_sim), NUM_CLASSES)
        scores.scatter_add_(1, bank_y[top_idx], (top_sim / t).exp())
        correct += int((scores.argmax(1) == test_y[i:i + chunk]).sum())
    return 100.0 * correct / len(test_f)


# ---- run -----------------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(description="MoCo reference training on Fashion-MNIST")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--train-limit", type=int, default=60000)
    p.add_argument("--test-limit", type=int, default=10000)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--lr", type=float, default=0.06)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--arch", default="resnet18", choices=["resnet18", "resnet34", "resnet50"])
    p.add_argument("--head", default="v1", choices=["v1", "v2"])
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--K", type=int, default=4096)
    p.add_argument("--m", type=float, default=0.99)
    p.add_argument("--T", type=float, default=0.1)
    p.add_argument("--bn-splits", type=int, default=8)
    p.add_argument("--wd", type=float, default=5e-4)
    p.add_argument("--symmetric", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--knn-k", type=int, default=200)
    p.add_argument("--knn-t", type=float, default=0.1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data-dir", default=DATA_DIR)
    p.add_argument("--json", action="store_true", help="print only JSON lines")
    return p.parse_args(argv)


class Printer:
    def __init__(self, json_only):
        self.json_only = json_only

    def record(self, obj):
        print(json.dumps(obj), flush=True)

    def note(self, text):
        if not self.json_only:
            print(f"# {text}", flush=True)


def check_config(args, n_train):
    keys_per_step = args.batch_size * (2 if args.symmetric else 1)
    if args.K < keys_per_step:
        raise SystemExit(f"--K {args.K} must be >= keys enqueued per step ({keys_per_step})")
    if args.batch_size % args.bn_splits != 0:
        raise SystemExit(f"--batch-size {args.batch_size} must be divisible by --bn-splits")
    if n_train < args.batch_size:
        raise SystemExit(f"--train-limit {n_train} is smaller than one batch")


def run_epoch(moco, optimizer, aug, train_x, args, printer):
    """One pass over the shuffled training subset. Returns (mean loss, step secs, aug secs)."""
    n, b = len(train_x), args.batch_size
    order = torch.randperm(n)
    steps = n // b  # drop_last
    losses, step_s, aug_s = [], 0.0, 0.0
    for s in range(steps):
        batch = train_x[order[s * b:(s + 1) * b]]
        t0 = time.perf_counter()
        x_q, x_k = augment(aug, batch), augment(aug, batch)
        perm = torch.randperm(b)
        perm2 = torch.randperm(b) if args.symmetric else None
        t1 = time.perf_counter()
        out = train_step(moco, optimizer, x_q, x_k, perm, perm2)
        losses.append(float(out["loss"]))
        t2 = time.perf_counter()
        aug_s += t1 - t0
        step_s += t2 - t1
        if s % 10 == 0 or s == steps - 1:
            printer.note(f"step {s + 1}/{steps} loss {losses[-1]:.4f} "
                         f"({b * (s + 1) / step_s:.0f} img/s)")
    return sum(losses) / len(losses), step_s, aug_s


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    printer = Printer(args.json)
    start = time.perf_counter()

    train_x, train_y = load_split(args.data_dir, "train", args.train_limit)
    test_x, test_y = load_split(args.data_dir, "t10k", args.test_limit)
    check_config(args, len(train_x))
    mean, std = float(train_x.double().mean()), float(train_x.double().std(unbiased=False))
    bank_x, test_xn = (train_x - mean) / std, (test_x - mean) / std
    printer.note(f"{len(train_x)} train / {len(test_x)} test images, mean {mean:.4f} std {std:.4f}")

    encoder = ResNet(args.arch, stem="cifar", width=args.width, in_channels=1, head=args.head,
                     dim=args.dim, bn_splits=args.bn_splits)
    init_weights(encoder)
    moco = MoCo(encoder, random_queue(args.dim, args.K), 0, args.m, args.T, args.symmetric).train()
    optimizer = torch.optim.SGD(moco.encoder_q.parameters(), lr=args.lr, momentum=0.9,
                                weight_decay=args.wd)
    aug = gray_augmentation(mean, std)

    def knn():
        return knn_accuracy(embed(moco.encoder_q, test_xn), test_y, embed(moco.encoder_q, bank_x),
                            train_y, args.knn_k, args.knn_t)

    printer.record({"random_init_knn": knn()})
    raw = lambda x: F.normalize(x.flatten(1), dim=1)  # noqa: E731
    printer.record({"raw_pixel_knn": knn_accuracy(raw(test_xn), test_y, raw(bank_x), train_y,
                                                  args.knn_k, args.knn_t)})

    acc = None
    for epoch in range(args.epochs):
        t0 = time.perf_counter()
        lr = cosine_lr(args.lr, epoch, args.epochs)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss, step_s, aug_s = run_epoch(moco, optimizer, aug, train_x, args, printer)
        acc = knn()
        images = (len(train_x) // args.batch_size) * args.batch_size
        printer.record({"epoch": epoch + 1, "loss": loss, "lr": lr, "images_per_s": images / step_s,
                        "knn_acc": acc, "seconds": time.perf_counter() - t0, "aug_seconds": aug_s})

    config = dict(vars(args), mean=mean, std=std, n_train=len(train_x), n_test=len(test_x),
                  steps_per_epoch=len(train_x) // args.batch_size, stem="cifar",
                  in_channels=1, sgd_momentum=0.9, bn_momentum=0.1, bn_eps=1e-5,
                  params=sum(p.numel() for p in moco.encoder_q.parameters()),
                  torch=torch.__version__)
    printer.record({"final_knn": acc, "epochs": args.epochs, "config": config,
                    "total_seconds": time.perf_counter() - start})


if __name__ == "__main__":
    main()
