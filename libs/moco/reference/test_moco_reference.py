"""Self-checks of the PyTorch MoCo reference.

Run: /usr/bin/python3 -m unittest discover -s libs/moco/reference -p 'test_*.py'

Each check recomputes one piece of the algorithm by hand (per-split batch_norm, un-shuffle, queue
columns, momentum update, SGD formula) instead of trusting the shared model code.
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import moco_reference as ref  # noqa: E402
from moco_model import ResNet, SplitBatchNorm, random_queue, unshuffle  # noqa: E402

torch.set_num_threads(2)

BASE_CONFIG = {"arch": "resnet18", "stem": "cifar", "width": 4, "in_channels": 3, "head": "v1",
               "dim": 8, "K": 16, "m": 0.99, "T": 0.1, "bn_splits": 2, "symmetric": False,
               "momentum": 0.9, "weight_decay": 5e-4, "bn_momentum": 0.1, "bn_eps": 1e-5}


def tensor_json(t):
    return {"shape": list(t.shape), "data": t.reshape(-1).tolist()}


def gamma_offset(name, p, arch):
    """BN gammas near 1, except the last BN of each residual branch near 0 (as zero-init-residual
    does): a deep tiny net with full-strength branches is too chaotic for float32 checks."""
    if p.dim() != 1 or not name.endswith(".weight") or name.startswith("fc"):
        return 0.0
    last = "bn3" if arch == "resnet50" else "bn2"
    return 0.0 if name.endswith(f".{last}.weight") else 1.0


def make_case(seed=0, size=8, batch=8, steps=3, **overrides):
    """A random case.json as the TypeScript side would write it (TF.js layouts)."""
    cfg = dict(BASE_CONFIG, **overrides)
    g = torch.Generator().manual_seed(seed)
    enc = ref.build_encoder(cfg)
    with torch.no_grad():  # non-trivial BN state so that buffers and affine params matter
        for name, p in enc.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.3 if p.dim() > 1 else 0.1)
                    + gamma_offset(name, p, cfg["arch"]))
        for name, b in enc.named_buffers():
            b.copy_(torch.rand(b.shape, generator=g) + (0.5 if "var" in name else -0.5))
    params, buffers = ref.named_state(enc)

    def images(n):  # NHWC
        return tensor_json(torch.randn(n, size, size, cfg["in_channels"], generator=g))

    def perm(n):
        return torch.randperm(n, generator=g).tolist()

    batches = batch if isinstance(batch, list) else [batch] * steps
    step_list = []
    for i, n in enumerate(batches):
        step = {"x_q": images(n), "x_k": images(n), "lr": 0.05 * (1 - 0.2 * i), "key_perm": perm(n)}
        if cfg["symmetric"]:
            step["key_perm_2"] = perm(n)
        step_list.append(step)
    return {"config": cfg, "params": params, "buffers": buffers,
            "queue": tensor_json(random_queue(cfg["dim"], cfg["K"], g)), "queue_ptr": 0,
            "steps": step_list}


def arr(obj):
    return np.asarray(obj["data"], dtype=np.float64).reshape(obj["shape"])


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


CASE_A = make_case(seed=1)  # resnet18 cifar v1, 8x8 inputs, K 16, batch 8, 3 steps
CASE_B = make_case(seed=2, K=12)  # K 12, batch 8: the pointer wraps (0 -> 8 -> 4 -> 0)
CASE_C = make_case(seed=3, K=24, head="v2", symmetric=True, stem="imagenet", size=16)
CASE_D = make_case(seed=4, arch="resnet50", width=4, size=16, steps=2)  # bottleneck blocks
# Better-conditioned twins for the all-steps float32/float64 comparison (see that test).
CASE_A16 = make_case(seed=1, size=16)
CASE_C64 = make_case(seed=5, K=24, head="v2", symmetric=True, stem="imagenet", size=64)
RUNS = {}


def run(name, case, dtype=torch.float32):
    if (name, dtype) not in RUNS:
        RUNS[(name, dtype)] = ref.run_case(case, dtype)
    return RUNS[(name, dtype)]


class SplitBatchNormTest(unittest.TestCase):
    def test_matches_batch_norm_per_split(self):
        g = torch.Generator().manual_seed(0)
        bn = SplitBatchNorm(3, splits=4, momentum=0.1, eps=1e-5)
        with torch.no_grad():
            bn.weight.copy_(torch.randn(3, generator=g))
            bn.bias.copy_(torch.randn(3, generator=g))
            bn.running_mean.copy_(torch.randn(3, generator=g))
            bn.running_var.copy_(torch.rand(3, generator=g) + 0.5)
        x = torch.randn(8, 3, 5, 5, generator=g) * 2 + 1
        r_mean, r_var = bn.running_mean.clone(), bn.running_var.clone()
        y = bn.train()(x)

        expected = torch.empty_like(x)
        means, vars_ = [], []
        for s in range(4):  # split s = samples s, s+4, ...
            rm, rv = r_mean.clone(), r_var.clone()
            expected[s::4] = F.batch_norm(x[s::4], rm, rv, bn.weight, bn.bias, True, 0.1, 1e-5)
            means.append(rm)
            vars_.append(rv)
        torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(bn.running_mean, torch.stack(means).mean(0))
        torch.testing.assert_close(bn.running_var, torch.stack(vars_).mean(0))

        # Unbiased running variance by hand for split 0, channel 0 (count = N/S*H*W = 50).
        v = x[0::4, 0].var(unbiased=True)
        self.assertAlmostEqual(float(vars_[0][0]), float(0.9 * r_var[0] + 0.1 * v), places=5)

        y_eval = bn.eval()(x)
        torch.testing.assert_close(y_eval, F.batch_norm(x, bn.running_mean, bn.running_var,
                                                        bn.weight, bn.bias, False, 0.0, 1e-5))

    def test_indivisible_batch_is_a_clear_error(self):
        bn = SplitBatchNorm(2, splits=3).train()
        with self.assertRaisesRegex(ValueError, "not divisible by bn_splits"):
            bn(torch.randn(8, 2, 3, 3))


class ArchitectureTest(unittest.TestCase):
    def test_names_and_shapes_match_torchvision(self):
        import torchvision
        for arch in ("resnet18", "resnet50"):
            ours = ResNet(arch, stem="imagenet", width=64, in_channels=3, head="v1", dim=1000)
            theirs = getattr(torchvision.models, arch)()
            ours_shapes = {n: tuple(p.shape) for n, p in ours.named_parameters()}
            theirs_shapes = {n: tuple(p.shape) for n, p in theirs.named_parameters()}
            self.assertEqual(ours_shapes, theirs_shapes)
            self.assertEqual({n for n, _ in ours.named_buffers()},
                             {n for n, _ in theirs.named_buffers()
                              if not n.endswith("num_batches_tracked")})

    def test_v2_head_names(self):
        enc = ResNet("resnet18", width=4, head="v2", dim=8)
        names = [n for n, _ in enc.named_parameters() if n.startswith("fc")]
        self.assertEqual(names, ["fc.0.weight", "fc.0.bias", "fc.2.weight", "fc.2.bias"])


class UnshuffleTest(unittest.TestCase):
    def test_unshuffle_inverts_permutation(self):
        x = torch.arange(24.0).reshape(8, 3)
        perm = torch.tensor([3, 7, 0, 5, 1, 6, 2, 4])
        torch.testing.assert_close(unshuffle(x[perm], perm), x)

    def test_shuffled_keys_with_one_split_equal_plain_keys(self):
        # With a single BN split the batch statistics do not depend on the order, so shuffle +
        # un-shuffle must give back exactly the keys of the unshuffled batch.
        cfg = dict(BASE_CONFIG, bn_splits=1)
        case = make_case(seed=5, bn_splits=1, steps=1)
        enc = ref.build_encoder(cfg)
        ref.load_named(dict(enc.named_parameters()), case["params"], "params", torch.float32)
        moco = ref.MoCo(enc, torch.zeros(8, 16)).train()
        x = ref.images_from_tfjs(case["steps"][0]["x_k"], torch.float32)
        perm = torch.tensor(case["steps"][0]["key_perm"])
        with torch.no_grad():
            plain_keys = F.normalize(moco.encoder_k(x), dim=1)
        torch.testing.assert_close(moco.keys(x, perm), plain_keys, rtol=1e-5, atol=1e-6)


class StepTest(unittest.TestCase):
    def check_queue(self, case, name):
        out, keys = run(name, case)
        K = case["config"]["K"]
        queue, ptr = arr(case["queue"]), case["queue_ptr"]
        for rec, k in zip(out["steps"], keys):
            n = k.shape[0]
            expected = queue.copy()
            for i in range(n):  # column by column, as a ring buffer
                expected[:, (ptr + i) % K] = k[i].numpy()
            np.testing.assert_allclose(arr(rec["queue"]), expected, rtol=0, atol=0)
            ptr = (ptr + n) % K
            self.assertEqual(rec["queue_ptr"], ptr)
            queue = expected
        return [rec["queue_ptr"] for rec in out["steps"]]

    def test_queue_columns_are_enqueued_keys(self):
        self.assertEqual(self.check_queue(CASE_A, "A"), [8, 0, 8])

    def test_queue_wraps_around(self):
        self.assertEqual(self.check_queue(CASE_B, "B"), [8, 4, 0])

    def test_short_last_batch_wraps(self):
        case = make_case(seed=8, K=12, batch=[8, 8, 4])
        self.assertEqual(self.check_queue(case, "short"), [8, 4, 8])

    def test_more_keys_than_queue_is_a_clear_error(self):
        with self.assertRaisesRegex(ValueError, "cannot enqueue 8 keys into a queue of 4"):
            ref.run_case(make_case(seed=9, K=4, steps=1))

    def test_symmetric_enqueues_both_key_sets(self):
        self.assertEqual(self.check_queue(CASE_C, "C"), [16, 8, 0])
        out, keys = run("C", CASE_C)
        self.assertEqual(tuple(keys[0].shape), (16, 8))
        self.assertEqual(arr(out["steps"][0]["logits_21"]).shape, (8, 25))

    def test_key_params_after_first_step_equal_initial_params(self):
        for name, case in (("A", CASE_A), ("C", CASE_C)):
            out, _ = run(name, case)
            for pname, p0 in case["params"].items():
                np.testing.assert_allclose(arr(out["steps"][0]["key_params"][pname]), arr(p0),
                                           rtol=1e-6, atol=1e-7, err_msg=pname)

    def test_momentum_update_by_hand(self):
        out, _ = run("A", CASE_A)
        m = CASE_A["config"]["m"]
        for t in range(1, len(out["steps"])):
            prev, cur = out["steps"][t - 1], out["steps"][t]
            for pname in CASE_A["params"]:
                expected = m * arr(prev["key_params"][pname]) + (1 - m) * arr(prev["query_params"][pname])
                np.testing.assert_allclose(arr(cur["key_params"][pname]), expected,
                                           rtol=1e-5, atol=1e-6, err_msg=pname)

    def test_sgd_update_by_hand(self):
        for name, case in (("A", CASE_A), ("C", CASE_C)):
            out, _ = run(name, case)
            cfg = case["config"]
            for pname, p0 in case["params"].items():
                p, buf = arr(p0), None
                for step, rec in zip(case["steps"], out["steps"]):
                    g = arr(rec["grads"][pname]) + cfg["weight_decay"] * p
                    buf = g if buf is None else cfg["momentum"] * buf + g
                    p = p - step["lr"] * buf
                    np.testing.assert_allclose(arr(rec["query_params"][pname]), p,
                                               rtol=1e-5, atol=1e-6, err_msg=pname)

    def test_loss_is_cross_entropy_of_logits(self):
        out, _ = run("A", CASE_A)
        for rec in out["steps"]:
            logits = arr(rec["logits"])
            self.assertEqual(logits.shape, (8, 17))
            mx = logits.max(1, keepdims=True)
            lse = np.log(np.exp(logits - mx).sum(1)) + mx[:, 0]
            self.assertAlmostEqual(rec["loss"], float(np.mean(lse - logits[:, 0])), places=4)

    def assert_close_runs(self, name, case, steps, tol=1e-4):
        out32, _ = run(name, case, torch.float32)
        out64, _ = run(name, case, torch.float64)
        for t, (a, b) in enumerate(zip(out32["steps"][:steps], out64["steps"][:steps])):
            self.assertLess(abs(a["loss"] - b["loss"]) / abs(b["loss"]), tol, f"{name} {t} loss")
            for field in ("logits", "queue") + (("logits_21",) if "logits_21" in b else ()):
                self.assertLess(rel_err(arr(a[field]), arr(b[field])), tol, f"{name} {t} {field}")
            for group in ("grads", "query_params", "key_params", "query_buffers", "key_buffers"):
                for pname in b[group]:
                    err = rel_err(arr(a[group][pname]), arr(b[group][pname]))
                    self.assertLess(err, tol, f"{name} step {t} {group} {pname}")

    def test_float32_matches_float64_first_step(self):
        for name, case in (("A", CASE_A), ("B", CASE_B), ("C", CASE_C), ("D", CASE_D)):
            self.assert_close_runs(name, case, steps=1)

    def test_float32_matches_float64_all_steps(self):
        # Only on cases whose deepest BN layers see >= 16 values per split. With 1x1 maps and 4
        # samples per split (8x8 cifar-stem or 16x16 imagenet-stem inputs) a tiny net is chaotic:
        # float64 runs whose parameters differ by 1e-7 relative drift apart by 1e-3..1e-1 in the
        # gradients within 2-3 steps, so float32 cannot be expected to stay within 1e-4 there.
        # Even here, float32 rounding after three steps varies with PyTorch's thread schedule (a CI
        # run saw 1.1e-4 on one BN bias gradient of case A), hence 3e-4 after the first step.
        for name, case in (("A", CASE_A), ("A16", CASE_A16), ("C64", CASE_C64), ("D", CASE_D)):
            self.assert_close_runs(name, case, steps=len(case["steps"]), tol=3e-4)

    def test_indivisible_bn_splits_is_a_clear_error(self):
        case = make_case(seed=6, bn_splits=3, steps=1)
        with self.assertRaisesRegex(ValueError, "not divisible by bn_splits=3"):
            ref.run_case(case)

    def test_command_line_round_trip(self):
        case = make_case(seed=7, steps=1)
        with tempfile.TemporaryDirectory() as tmp:
            case_path, out_path = os.path.join(tmp, "case.json"), os.path.join(tmp, "out.json")
            with open(case_path, "w") as f:
                json.dump(case, f)
            subprocess.run([sys.executable, os.path.join(HERE, "moco_reference.py"), case_path,
                            out_path, "--float64"], check=True)
            with open(out_path) as f:
                out = json.load(f)
        expected, _ = ref.run_case(case, torch.float64)
        self.assertEqual(out, expected)
        # TF.js layout on output: conv kernels [kh, kw, in, out], linear [in, out].
        self.assertEqual(out["steps"][0]["grads"]["conv1.weight"]["shape"], [3, 3, 3, 4])
        self.assertEqual(out["steps"][0]["query_params"]["fc.weight"]["shape"], [32, 8])


if __name__ == "__main__":
    unittest.main()
