"""PyTorch side of `npm run bench:epoch`: the training path as a plain PyTorch user writes it.
Run by bench/epoch.ts with the job as JSON in argv[1].

The images are read as torchvision's datasets do (FashionMNIST: the idx file into one uint8 array,
a PIL image per item; ImageFolder: a PNG decoded with PIL per item), two views per image through
torchvision transforms (TwoCropsTransform, as facebookresearch/moco), a DataLoader (shuffle,
drop_last, `workers` processes), then moco_model.train_step for one epoch of warmup + steps
batches. Normalize uses a fixed mean 0.5 and std 0.25 (its values do not change the time)."""

import json
import resource
import sys
import time

import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.datasets import ImageFolder

import torch_bench  # puts libs/moco/reference on sys.path
from moco_model import MoCo, random_queue, train_step  # noqa: E402
from train_reference import read_idx  # noqa: E402


class TwoCrops:
    def __init__(self, transform):
        self.transform = transform

    def __call__(self, x):
        return self.transform(x), self.transform(x)


class IdxImages(Dataset):
    """torchvision's FashionMNIST item: a PIL 'L' image of row i."""

    def __init__(self, array, transform):
        self.array, self.transform = array, transform

    def __len__(self):
        return len(self.array)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.array[i], mode="L")), 0


def augmentation(name, size, channels):
    normalize = T.Normalize([0.5] * channels, [0.25] * channels)
    crop = T.RandomResizedCrop(size, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3))
    if name == "gray":
        jitter = [T.RandomApply([T.ColorJitter(0.4, 0.4)], p=0.8)]
    else:  # MoCo v2
        jitter = [T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8), T.RandomGrayscale(p=0.2),
                  T.RandomApply([T.GaussianBlur(3, sigma=(0.1, 2.0))], p=0.5)]
    return TwoCrops(T.Compose([crop, *jitter, T.RandomHorizontalFlip(), T.ToTensor(), normalize]))


def dataset(job):
    channels = job["config"]["inChannels"]
    if job["dataset"] == "fashion-mnist":
        array = np.ascontiguousarray(read_idx(job["path"])[:job["images"]])
        return IdxImages(array, augmentation(job["augmentation"], array.shape[1], channels))
    return ImageFolder(job["path"], transform=augmentation(job["augmentation"], 32, channels))


def main():
    job = json.loads(sys.argv[1])
    torch.set_num_threads(job["threads"])
    torch.manual_seed(0)
    config, batch = job["config"], job["config"]["batchSize"]
    t0 = time.perf_counter()
    data = dataset(job)
    read_s = time.perf_counter() - t0
    loader = DataLoader(data, batch_size=batch, shuffle=True, drop_last=True, num_workers=job["workers"])
    moco = MoCo(torch_bench.build_encoder(config), random_queue(config["dim"], config["K"]), m=config["m"], T=config["T"])
    optimizer = torch.optim.SGD(moco.encoder_q.parameters(), lr=config["lr"], momentum=config["momentum"],
                                weight_decay=config["weightDecay"])
    data_ms, step_ms = [], []
    batches = iter(loader)
    for i in range(len(loader)):
        t0 = time.perf_counter()
        (x_q, x_k), _ = next(batches)
        t1 = time.perf_counter()
        train_step(moco, optimizer, x_q, x_k, torch.randperm(batch))
        t2 = time.perf_counter()
        data_ms.append((t1 - t0) * 1000)
        step_ms.append((t2 - t1) * 1000)
        print(f"  step {i + 1}: {step_ms[-1] + data_ms[-1]:.1f} ms (data {data_ms[-1]:.1f} ms)", file=sys.stderr, flush=True)
    del batches  # shuts the DataLoader's workers down, so their peak RSS is counted below
    w, n = job["warmup"], len(data_ms) - job["warmup"]
    seconds = (sum(data_ms[w:]) + sum(step_ms[w:])) / 1000
    print(json.dumps({
        "images_per_s": round(batch * n / seconds, 1),
        "steps_timed": n,
        "data_ms_mean": round(sum(data_ms[w:]) / n, 1),
        "step_ms_mean": round(sum(step_ms[w:]) / n, 1),
        "data_share": round(sum(data_ms[w:]) / 1000 / seconds, 3),
        "warmup_ms": [round(d + s, 1) for d, s in zip(data_ms[:w], step_ms[:w])],
        "read_s": round(read_s, 2),
        "threads": torch.get_num_threads(),
        "workers": job["workers"],
        # ru_maxrss of this process only: DataLoader workers are processes of their own.
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_rss_workers_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        "version": torch.__version__,
    }))


if __name__ == "__main__":
    main()
