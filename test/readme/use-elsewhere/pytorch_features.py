import json

import numpy as np
import torch
import torchvision
from PIL import Image

checkpoint = torch.load("encoder.pth.tar", map_location="cpu")
encoder, pre = checkpoint["encoder"], checkpoint["preprocessing"]

model = getattr(torchvision.models, checkpoint["arch"])()  # width 64, torchvision's layer names
if encoder["stem"] == "cifar":  # small images: a 3x3 stride-1 stem without max pooling
    model.conv1 = torch.nn.Conv2d(encoder["in_channels"], 64, 3, 1, 1, bias=False)
    model.maxpool = torch.nn.Identity()
model.fc = torch.nn.Identity()  # pooled features: the embedder's output=backbone
prefix = "module.encoder_q."
model.load_state_dict({k[len(prefix):]: v for k, v in checkpoint["state_dict"].items()
                       if k.startswith(prefix) and not k.startswith(prefix + "fc")})
model.eval()

image = Image.open("shoe.png").convert("L" if pre["channels"] == 1 else "RGB")
image = image.resize((pre["size"], pre["size"]), Image.BILINEAR)
x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).reshape(pre["size"], pre["size"], -1)
x = torchvision.transforms.functional.normalize(x.permute(2, 0, 1), pre["mean"], pre["std"])
with torch.no_grad():
    features = model(x.unsqueeze(0))[0]
print(json.dumps(features.tolist()))
