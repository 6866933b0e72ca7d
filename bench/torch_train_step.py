"""PyTorch side of `npm run bench:train`: moco_model.train_step, timed. Run by bench/harness.ts."""

import torch

import torch_bench  # puts libs/moco/reference on sys.path
from moco_model import MoCo, random_queue, train_step  # noqa: E402


def setup(job):
    config = job["config"]
    moco = MoCo(torch_bench.build_encoder(config), random_queue(config["dim"], config["K"]),
                m=config["m"], T=config["T"])
    optimizer = torch.optim.SGD(moco.encoder_q.parameters(), lr=config["lr"], momentum=config["momentum"],
                                weight_decay=config["weightDecay"])
    x_q, x_k = torch_bench.images(job), torch_bench.images(job)
    # A fresh shuffle-BN permutation per step, as Moco.step draws one.
    return lambda: train_step(moco, optimizer, x_q, x_k, torch.randperm(job["batch"]))


if __name__ == "__main__":
    torch_bench.main(setup)
