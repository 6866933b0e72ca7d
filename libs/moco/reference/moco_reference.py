#!/usr/bin/python3
"""MoCo parity runner: replays the steps of a TypeScript-generated case.json in PyTorch.

Usage: /usr/bin/python3 libs/moco/reference/moco_reference.py case.json out.json [--float64]

The exchange format (TF.js tensor layouts, names, step order) is specified in PARITY.md next to
this file. `--float64` runs the whole case in double precision, which tells which side is off
when float32 results disagree.
"""

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from moco_model import MoCo, ResNet, train_step  # noqa: E402

CONFIG_DEFAULTS = {"arch": "resnet18", "stem": "cifar", "width": 64, "in_channels": 3,
                   "head": "v1", "dim": 128, "K": 4096, "m": 0.99, "T": 0.1, "bn_splits": 1,
                   "symmetric": False, "momentum": 0.9, "weight_decay": 0.0,
                   "bn_momentum": 0.1, "bn_eps": 1e-5}


# ---- layout conversion (TF.js <-> PyTorch) -------------------------------------------------

def from_tfjs(obj, dtype):
    """{"shape", "data"} in TF.js layout -> torch tensor in PyTorch layout."""
    t = torch.tensor(obj["data"], dtype=dtype).reshape(obj["shape"])
    if t.dim() == 4:  # conv kernel [kh, kw, in, out] -> [out, in, kh, kw]
        return t.permute(3, 2, 0, 1).contiguous()
    if t.dim() == 2:  # linear weight [in, out] -> [out, in]
        return t.t().contiguous()
    return t


def to_tfjs(t):
    """Inverse of `from_tfjs` for parameters/buffers."""
    t = t.detach()
    if t.dim() == 4:
        t = t.permute(2, 3, 1, 0)
    elif t.dim() == 2:
        t = t.t()
    return plain(t)


def plain(t):
    """Tensor -> {"shape", "data"} without any layout change (logits, queue)."""
    t = t.detach().contiguous()
    return {"shape": list(t.shape), "data": t.reshape(-1).tolist()}


def images_from_tfjs(obj, dtype):
    """NHWC images -> NCHW."""
    t = torch.tensor(obj["data"], dtype=dtype).reshape(obj["shape"])
    return t.permute(0, 3, 1, 2).contiguous()


# ---- model construction --------------------------------------------------------------------

def build_encoder(cfg):
    return ResNet(arch=cfg["arch"], stem=cfg["stem"], width=cfg["width"],
                  in_channels=cfg["in_channels"], head=cfg["head"], dim=cfg["dim"],
                  bn_splits=cfg["bn_splits"], bn_momentum=cfg["bn_momentum"], bn_eps=cfg["bn_eps"])


def load_named(targets, given, kind, dtype):
    """Copy `given` (TF.js layout) into `targets` (name -> tensor), checking names and shapes."""
    missing = sorted(set(targets) - set(given))
    extra = sorted(set(given) - set(targets))
    if missing or extra:
        raise ValueError(f"case {kind} do not match the model: missing {missing}, unexpected {extra}")
    for name, target in targets.items():
        value = from_tfjs(given[name], dtype)
        if value.shape != target.shape:
            raise ValueError(f"{kind[:-1]} {name}: case shape (converted) {list(value.shape)} "
                             f"!= model shape {list(target.shape)}")
        with torch.no_grad():
            target.copy_(value)


def named_state(encoder):
    params = {n: to_tfjs(p) for n, p in encoder.named_parameters()}
    buffers = {n: to_tfjs(b) for n, b in encoder.named_buffers()}
    return params, buffers


# ---- the run ---------------------------------------------------------------------------------

def run_case(case, dtype=torch.float32):
    """Run every step of `case`. Returns (out dict as written to out.json, keys per step)."""
    cfg = dict(CONFIG_DEFAULTS, **case["config"])
    encoder = build_encoder(cfg).to(dtype)
    load_named(dict(encoder.named_parameters()), case["params"], "params", dtype)
    load_named(dict(encoder.named_buffers()), case["buffers"], "buffers", dtype)
    queue = torch.tensor(case["queue"]["data"], dtype=dtype).reshape(case["queue"]["shape"])
    if list(queue.shape) != [cfg["dim"], cfg["K"]]:
        raise ValueError(f"queue shape {list(queue.shape)} != [dim, K] = {[cfg['dim'], cfg['K']]}")

    moco = MoCo(encoder, queue, case.get("queue_ptr", 0), cfg["m"], cfg["T"], cfg["symmetric"])
    moco.train()  # both encoders use batch statistics during a step
    first_lr = case["steps"][0]["lr"] if case["steps"] else 0.0
    optimizer = torch.optim.SGD(moco.encoder_q.parameters(), lr=first_lr,
                                momentum=cfg["momentum"], weight_decay=cfg["weight_decay"])

    steps, keys = [], []
    for step in case["steps"]:
        x_q = images_from_tfjs(step["x_q"], dtype)
        x_k = images_from_tfjs(step["x_k"], dtype)
        perm = permutation(step, "key_perm", len(x_k))
        perm2 = permutation(step, "key_perm_2", len(x_q)) if cfg["symmetric"] else None
        res = train_step(moco, optimizer, x_q, x_k, perm, perm2, lr=step["lr"], record_grads=True)
        keys.append(res["keys"])
        steps.append(step_record(moco, res))
    return {"steps": steps}, keys


def permutation(step, key, n):
    if key not in step:
        raise ValueError(f"step is missing {key!r}")
    perm = torch.tensor(step[key], dtype=torch.long)
    if sorted(perm.tolist()) != list(range(n)):
        raise ValueError(f"{key} is not a permutation of 0..{n - 1}: {step[key]}")
    return perm


def step_record(moco, res):
    qp, qb = named_state(moco.encoder_q)
    kp, kb = named_state(moco.encoder_k)
    rec = {"logits": plain(res["logits"]), "loss": float(res["loss"]),
           "grads": {n: to_tfjs(g) for n, g in res["grads"].items()},
           "query_params": qp, "key_params": kp, "query_buffers": qb, "key_buffers": kb,
           "queue": plain(moco.queue), "queue_ptr": moco.queue_ptr}
    if "logits_21" in res:
        rec["logits_21"] = plain(res["logits_21"])
    return rec


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", help="case.json written by the TypeScript parity test")
    parser.add_argument("out", help="where to write out.json")
    parser.add_argument("--float64", action="store_true", help="compute in double precision")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    with open(args.case) as f:
        case = json.load(f)
    out, _ = run_case(case, torch.float64 if args.float64 else torch.float32)
    with open(args.out, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
