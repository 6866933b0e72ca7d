# What facebookresearch/moco's main_lincls.py does with `--pretrained encoder.pth.tar`.
import torch
import torchvision

model = torchvision.models.__dict__["resnet18"](num_classes=10)
checkpoint = torch.load("encoder.pth.tar", map_location="cpu")
state_dict = checkpoint["state_dict"]
for k in list(state_dict.keys()):
    # retain only encoder_q up to before the embedding layer
    if k.startswith("module.encoder_q") and not k.startswith("module.encoder_q.fc"):
        state_dict[k[len("module.encoder_q."):]] = state_dict[k]
    del state_dict[k]
msg = model.load_state_dict(state_dict, strict=False)
assert set(msg.missing_keys) == {"fc.weight", "fc.bias"}
print("=> loaded pre-trained model 'encoder.pth.tar' (epoch {})".format(checkpoint["epoch"]))
