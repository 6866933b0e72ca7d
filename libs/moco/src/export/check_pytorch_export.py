"""Loads a PyTorch export (exportPytorch) as MoCo users do and compares its vectors with the service's.

Usage: check_pytorch_export.py EXPORT.pth.tar INPUT.f32 EXPECTED.json
INPUT.f32: preprocessed images, float32 NCHW; EXPECTED.json: {"shape": [N, C, H, W],
"backbone": [...], "head": [...]} (the service's vectors). Prints {"backbone": max abs error,
"head": max abs error, ...} as JSON.
"""
import json
import sys

import numpy as np
import torch
import torch.nn as nn
import torchvision
from torchvision.models.resnet import BasicBlock, Bottleneck


class WideResNet(nn.Module):
    """torchvision's ResNet with any first-stage width (torchvision fixes 64), same parameter names."""

    def __init__(self, block, layers, width, in_channels):
        super().__init__()
        self.inplanes = width
        self.conv1 = nn.Conv2d(in_channels, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(block, width, layers[0], 1)
        self.layer2 = self._make_layer(block, width * 2, layers[1], 2)
        self.layer3 = self._make_layer(block, width * 4, layers[2], 2)
        self.layer4 = self._make_layer(block, width * 8, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Identity()

    def _make_layer(self, block, planes, blocks, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)


def backbone_for(encoder):
    arch, width, channels = encoder["arch"], encoder["width"], encoder["in_channels"]
    if width == 64:
        model = getattr(torchvision.models, arch)()
        model.fc = nn.Identity()
        if channels != 3:
            model.conv1 = nn.Conv2d(channels, 64, 7, 2, 3, bias=False)
    else:
        block, layers = {"resnet18": (BasicBlock, [2, 2, 2, 2]), "resnet34": (BasicBlock, [3, 4, 6, 3]),
                         "resnet50": (Bottleneck, [3, 4, 6, 3])}[arch]
        model = WideResNet(block, layers, width, channels)
    if encoder["stem"] == "cifar":
        # The CIFAR stem: a 3x3 stride-1 first convolution and no max pooling.
        model.conv1 = nn.Conv2d(channels, width, 3, 1, 1, bias=False)
        model.maxpool = nn.Identity()
    return model


def main(path, input_path, expected_path):
    expected = json.load(open(expected_path))
    # As main_lincls.py loads it. (PyTorch 1.13's weights_only loader knows no float opcode; 2.x's does.)
    checkpoint = torch.load(path, map_location="cpu")
    state = checkpoint["state_dict"]
    encoder = checkpoint["encoder"]

    # main_lincls.py's loading: the query encoder without its projection head.
    backbone_state = {k[len("module.encoder_q."):]: v for k, v in state.items()
                      if k.startswith("module.encoder_q.") and not k.startswith("module.encoder_q.fc")}
    model = backbone_for(encoder)
    model.load_state_dict(backbone_state, strict=True)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eps = encoder["bn_eps"]
    model.eval()

    x = torch.from_numpy(np.fromfile(input_path, dtype="<f4").reshape(expected["shape"]))
    with torch.no_grad():
        features = model(x)
        if encoder["head"] == "v1":
            head = nn.functional.linear(features, state["module.encoder_q.fc.weight"], state["module.encoder_q.fc.bias"])
        else:
            hidden = nn.functional.linear(features, state["module.encoder_q.fc.0.weight"], state["module.encoder_q.fc.0.bias"]).relu()
            head = nn.functional.linear(hidden, state["module.encoder_q.fc.2.weight"], state["module.encoder_q.fc.2.bias"])

    def err(ours, name):
        return float(np.abs(ours.numpy().ravel() - np.array(expected[name], dtype=np.float64)).max())

    print(json.dumps({
        "backbone": err(features, "backbone"),
        "head": err(head, "head"),
        "arch": checkpoint["arch"],
        "epoch": checkpoint["epoch"],
        "preprocessing": checkpoint["preprocessing"],
        "keys": len(state),
    }))


if __name__ == "__main__":
    main(*sys.argv[1:])
