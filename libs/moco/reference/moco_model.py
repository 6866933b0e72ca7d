"""Shared PyTorch definition of the MoCo reference (model, split BN, one training step).

Used by both `moco_reference.py` (the parity runner) and `train_reference.py` (the learning run),
so the two can never drift apart. Written from the algorithm described in PARITY.md; names follow
torchvision so that parameter dictionaries line up with the TypeScript side.
"""

import copy
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

# Blocks per stage and block kind for each supported depth.
ARCHS = {
    "resnet18": ("basic", [2, 2, 2, 2]),
    "resnet34": ("basic", [3, 4, 6, 3]),
    "resnet50": ("bottleneck", [3, 4, 6, 3]),
}


class SplitBatchNorm(nn.Module):
    """BatchNorm2d whose batch is normalised as `splits` independent sub-batches.

    Sample n belongs to split n % splits. Each split has its own batch statistics; the running
    statistics are updated per split (PyTorch momentum convention) and then averaged, so only
    one [C] running mean/var is stored. In eval mode it is an ordinary BatchNorm2d.
    """

    def __init__(self, channels, splits=1, momentum=0.1, eps=1e-5):
        super().__init__()
        self.channels = channels
        self.splits = splits
        self.momentum = momentum
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x):
        if not self.training:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                False, 0.0, self.eps)
        n, c, h, w = x.shape
        s = self.splits
        if n % s != 0:
            raise ValueError(f"SplitBatchNorm: batch of {n} is not divisible by bn_splits={s}")
        # Folding the split into the channel axis ([n, c] -> [n/s, s*c]) puts sample n in
        # channel block n % s, so one batch_norm call normalises every split separately.
        running_mean = self.running_mean.repeat(s)  # per-split copies, updated in place below
        running_var = self.running_var.repeat(s)
        y = F.batch_norm(x.reshape(n // s, s * c, h, w), running_mean, running_var,
                         self.weight.repeat(s), self.bias.repeat(s), True, self.momentum, self.eps)
        with torch.no_grad():
            self.running_mean.copy_(running_mean.view(s, c).mean(0))
            self.running_var.copy_(running_var.view(s, c).mean(0))
        return y.reshape(n, c, h, w)


def conv(cin, cout, kernel, stride=1):
    """Bias-free conv with 'same'-style padding (kernel // 2), as in torchvision's ResNet."""
    return nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False)


def shortcut(cin, cout, stride, norm):
    """Projection shortcut (`downsample.0`, `downsample.1`) when the shape changes, else None."""
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(conv(cin, cout, 1, stride), norm(cout))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride, norm):
        super().__init__()
        self.conv1 = conv(cin, planes, 3, stride)
        self.bn1 = norm(planes)
        self.conv2 = conv(planes, planes, 3)
        self.bn2 = norm(planes)
        self.downsample = shortcut(cin, planes, stride, norm)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, planes, stride, norm):
        super().__init__()
        self.conv1 = conv(cin, planes, 1)
        self.bn1 = norm(planes)
        self.conv2 = conv(planes, planes, 3, stride)  # stride on the 3x3, as torchvision (v1.5)
        self.bn2 = norm(planes)
        self.conv3 = conv(planes, planes * 4, 1)
        self.bn3 = norm(planes * 4)
        self.downsample = shortcut(cin, planes * 4, stride, norm)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


class ResNet(nn.Module):
    """ResNet encoder with a projection head; `features()` is the pooled backbone output."""

    def __init__(self, arch="resnet18", stem="cifar", width=64, in_channels=3, head="v1",
                 dim=128, bn_splits=1, bn_momentum=0.1, bn_eps=1e-5):
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"unknown arch {arch!r}; expected one of {sorted(ARCHS)}")
        if stem not in ("cifar", "imagenet"):
            raise ValueError(f"unknown stem {stem!r}; expected 'cifar' or 'imagenet'")
        kind, blocks = ARCHS[arch]
        block = BasicBlock if kind == "basic" else Bottleneck

        def norm(channels):
            return SplitBatchNorm(channels, bn_splits, bn_momentum, bn_eps)

        if stem == "cifar":
            self.conv1 = conv(in_channels, width, 3)
            self.maxpool = None
        else:
            self.conv1 = conv(in_channels, width, 7, stride=2)
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.bn1 = norm(width)

        cin = width
        for i, count in enumerate(blocks):
            planes = width * 2 ** i
            stage = []
            for j in range(count):
                stride = 2 if (i > 0 and j == 0) else 1
                stage.append(block(cin, planes, stride, norm))
                cin = planes * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*stage))
        self.feature_dim = cin

        if head == "v1":
            self.fc = nn.Linear(cin, dim)
        elif head == "v2":
            self.fc = nn.Sequential(nn.Linear(cin, cin), nn.ReLU(), nn.Linear(cin, dim))
        else:
            raise ValueError(f"unknown head {head!r}; expected 'v1' or 'v2'")

    def features(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        if self.maxpool is not None:
            x = self.maxpool(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.mean(dim=(2, 3))  # global average pool

    def forward(self, x):
        return self.fc(self.features(x))


def init_weights(model):
    """torchvision's ResNet initialisation: Kaiming-normal (fan_out, ReLU) convs, BN gamma=1 and
    beta=0; Linear layers keep PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)) init."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, SplitBatchNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


def random_queue(dim, K, generator=None):
    """Initial dictionary: randn(dim, K) with every column L2-normalised."""
    return F.normalize(torch.randn(dim, K, generator=generator), dim=0)


def unshuffle(shuffled, perm):
    """Undo `x[perm]`: row i of `shuffled` belongs to sample perm[i]."""
    out = torch.empty_like(shuffled)
    out[perm] = shuffled
    return out


class MoCo(nn.Module):
    """Query/key encoders plus the key queue. The optimiser lives outside (see `train_step`)."""

    def __init__(self, encoder_q, queue, queue_ptr=0, m=0.99, T=0.1, symmetric=False):
        super().__init__()
        self.encoder_q = encoder_q
        # The key encoder starts as an exact copy (parameters and BN buffers) and is never
        # trained by gradients, only by the momentum update.
        self.encoder_k = copy.deepcopy(encoder_q)
        for p in self.encoder_k.parameters():
            p.requires_grad_(False)
        self.register_buffer("queue", queue.clone())
        self.queue_ptr = int(queue_ptr)
        self.m = m
        self.T = T
        self.symmetric = symmetric

    @torch.no_grad()
    def momentum_update(self):
        # Parameters only: each encoder keeps its own BN running statistics.
        for pk, pq in zip(self.encoder_k.parameters(), self.encoder_q.parameters()):
            pk.copy_(pk * self.m + pq * (1.0 - self.m))

    @torch.no_grad()
    def keys(self, x, perm):
        """Shuffle-BN: run the key encoder on the permuted batch so that a query and its key land
        in different BN splits, then restore the original order."""
        k = F.normalize(self.encoder_k(x[perm]), dim=1)
        return unshuffle(k, perm)

    def contrast(self, x_a, x_b, perm):
        """Queries of x_a against keys of x_b and the (pre-step) queue: loss, logits, keys."""
        q = F.normalize(self.encoder_q(x_a), dim=1)
        k = self.keys(x_b, perm)
        l_pos = (q * k).sum(dim=1, keepdim=True)
        l_neg = q @ self.queue
        logits = torch.cat([l_pos, l_neg], dim=1) / self.T
        labels = torch.zeros(logits.shape[0], dtype=torch.long)  # the positive is column 0
        return F.cross_entropy(logits, labels), logits, k

    def forward(self, x_q, x_k, perm, perm2=None):
        """Momentum update, then the contrastive loss. Returns a dict; does not enqueue."""
        self.momentum_update()
        loss, logits, k2 = self.contrast(x_q, x_k, perm)
        if not self.symmetric:
            return {"loss": loss, "logits": logits, "keys": k2}
        if perm2 is None:
            raise ValueError("symmetric loss needs a second key permutation (key_perm_2)")
        loss_21, logits_21, k1 = self.contrast(x_k, x_q, perm2)
        return {"loss": loss + loss_21, "logits": logits, "logits_21": logits_21,
                "keys": torch.cat([k1, k2], dim=0)}

    @torch.no_grad()
    def enqueue(self, keys):
        """Write keys ([n, dim]) into columns ptr .. ptr+n-1, wrapping around the end."""
        n, K = keys.shape[0], self.queue.shape[1]
        if n > K:
            raise ValueError(f"cannot enqueue {n} keys into a queue of {K} (K must be >= keys/step)")
        cols = (self.queue_ptr + torch.arange(n)) % K
        self.queue[:, cols] = keys.t().to(self.queue.dtype)
        self.queue_ptr = (self.queue_ptr + n) % K


def train_step(moco, optimizer, x_q, x_k, perm, perm2=None, lr=None, record_grads=False):
    """One MoCo step in the official order: momentum update, loss, backward, SGD, enqueue.

    Returns the forward dict (tensors detached) plus `grads` (dloss/dparam of the query encoder,
    before weight decay) when `record_grads` is set.
    """
    if lr is not None:
        for group in optimizer.param_groups:
            group["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    out = moco(x_q, x_k, perm, perm2)
    out["loss"].backward()
    if record_grads:
        out["grads"] = {name: p.grad.detach().clone()
                        for name, p in moco.encoder_q.named_parameters()}
    optimizer.step()  # torch SGD adds weight_decay * p internally, p.grad stays the raw gradient
    moco.enqueue(out["keys"])
    return {k: (v.detach() if torch.is_tensor(v) else v) for k, v in out.items()}


def cosine_lr(base_lr, epoch, epochs):
    """Cosine schedule evaluated at the start of `epoch` (0-based), no warm-up."""
    return base_lr * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))
