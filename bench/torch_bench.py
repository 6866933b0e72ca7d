"""What the PyTorch sides of the speed benchmarks share: the job from bench/harness.ts, the model
from libs/moco/reference/moco_model.py, the step timer (same rules as `timeSteps` in harness.ts),
and the one JSON line a side prints."""

import json
import os
import resource
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "libs", "moco", "reference"))
from moco_model import ResNet, init_weights  # noqa: E402


def build_encoder(config):
    """The encoder of a TypeScript MocoConfig (camelCase keys, as harness.ts sends it)."""
    encoder = ResNet(arch=config["arch"], stem=config["stem"], width=config["width"],
                     in_channels=config["inChannels"], head=config["head"], dim=config["dim"],
                     bn_splits=config["bnSplits"], bn_momentum=config["bnMomentum"], bn_eps=config["bnEps"])
    init_weights(encoder)
    return encoder


def images(job):
    """Random NCHW inputs, the PyTorch layout of the TypeScript side's NHWC batch."""
    return torch.randn(job["batch"], job["config"]["inChannels"], job["size"], job["size"])


def time_steps(step, schedule):
    for _ in range(schedule["warmup"]):
        step()
    ms = []
    while len(ms) < schedule["maxSteps"] and (len(ms) < schedule["minSteps"] or sum(ms) < schedule["budgetS"] * 1000):
        t0 = time.perf_counter()
        step()
        ms.append((time.perf_counter() - t0) * 1000)
    return ms


def main(setup):
    """Runs the job given as JSON in argv[1]: `setup(job)` returns the step to time."""
    job = json.loads(sys.argv[1])
    torch.set_num_threads(job["threads"])
    torch.manual_seed(0)
    ms = time_steps(setup(job), job["schedule"])
    median = statistics.median(ms)
    print(json.dumps({
        "images_per_s": round(job["batch"] * 1000 / median, 1),
        "step_ms_median": round(median, 1),
        "steps_timed": len(ms),
        "warmup": job["schedule"]["warmup"],
        "step_ms": [round(x, 1) for x in ms],
        "threads": torch.get_num_threads(),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),  # kB on Linux
        "version": torch.__version__,
    }))
