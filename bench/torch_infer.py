"""PyTorch side of `npm run bench:infer`: eval-mode embedding, timed. Run by bench/harness.ts."""

import torch
import torch.nn.functional as F

import torch_bench


def setup(job):
    encoder = torch_bench.build_encoder(job["config"]).eval()
    x = torch_bench.images(job)

    def step():
        # inference_mode, as a serving path would use: no autograd bookkeeping at all.
        with torch.inference_mode():
            return F.normalize(encoder(x), dim=1)

    return step


if __name__ == "__main__":
    torch_bench.main(setup)
