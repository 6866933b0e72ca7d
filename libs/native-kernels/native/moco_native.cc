// oneDNN (libdnnl) kernels for the tfjs cpu backend: conv2d forward / backward-data / backward-weights
// (NHWC activations, HWIO filters as tfjs stores them) and batched matmul with transposes.
// Synchronous; inputs are Float32Arrays read in place, outputs are new Float32Arrays oneDNN writes into.
// Primitives are cached per shape (the training loop repeats a few dozen shapes), per calling thread: the
// addon may be loaded by several worker_threads, and oneDNN's stream and our reorder buffers are not
// meant to be shared between threads running at once.
// The elementwise and reduction loops run on the same OpenMP (libgomp) thread pool as oneDNN.
#include <napi.h>
#include <omp.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "addon_common.h"
#include "resnet_plan.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

ConvGeom geomOf(const Napi::CallbackInfo& info, int xi, int wi, int yi, int si, int pi, int di) {
  ConvGeom g;
  g.x = dimsOf(info[xi], 4, "xShape");
  g.w = dimsOf(info[wi], 4, "filterShape");
  g.y = dimsOf(info[yi], 4, "yShape");
  auto s = dimsOf(info[si], 2, "strides");
  auto p = dimsOf(info[pi], 4, "pads");  // top, bottom, left, right
  auto d = dimsOf(info[di], 2, "dilations");
  g.strides = {s[0], s[1]};
  g.dil = {d[0] - 1, d[1] - 1};
  g.padL = {p[0], p[2]};
  g.padR = {p[1], p[3]};
  return g;
}

dnnl::convolution_forward::primitive_desc fwdPd(const ConvGeom& g) {
  auto d = dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
                                           actMd(g.x), wMd(g.w, tag::any), actMd(g.y), g.strides, g.dil, g.padL,
                                           g.padR);
  return dnnl::convolution_forward::primitive_desc(d, eng());
}

// Copies user-layout weights into the layout a primitive wants (or passes them through).
struct WeightsIn {
  bool needed = false;
  memory::desc user, want;
  dnnl::reorder prim;
  memory buf;
  void init(const memory::desc& u, const memory::desc& w) {
    user = u;
    want = w;
    needed = u != w;
    if (needed) {
      buf = memory(w, eng());
      prim = dnnl::reorder(memory(u, eng(), DNNL_MEMORY_NONE), buf);
    }
  }
  memory get(float* data) {
    memory m(user, eng(), data);
    if (!needed) return m;
    prim.execute(strm(), m, buf);
    return buf;
  }
};

struct ConvFwd {
  dnnl::convolution_forward prim;
  WeightsIn w;
};
struct ConvBwdData {
  dnnl::convolution_backward_data prim;
  WeightsIn w;
};
struct ConvBwdWeights {
  dnnl::convolution_backward_weights prim;
  bool needed = false;
  memory::desc user, got;
  dnnl::reorder out;
  memory buf;
};
struct MatMul {
  dnnl::matmul prim;
  memory::desc a, b, c;
};

thread_local std::unordered_map<std::string, std::unique_ptr<ConvFwd>> fwdCache;
// An inference convolution. Winograd ones compute in oneDNN's blocked layout: src, the residual and dst
// are reordered from and to the tensors' NHWC on the way.
struct ConvInfer {
  dnnl::convolution_forward prim;
  memory::desc wUser, wWant;  // packed per filter: packedWeights
  bool winograd = false;
  memory::desc src, dst;  // the primitive's layouts (blocked when winograd)
};
thread_local std::unordered_map<std::string, std::unique_ptr<ConvInfer>> fusedCache;
thread_local std::unordered_map<std::string, std::unique_ptr<ConvBwdData>> bwdDataCache;
thread_local std::unordered_map<std::string, std::unique_ptr<ConvBwdWeights>> bwdWeightsCache;
thread_local std::unordered_map<std::string, std::unique_ptr<MatMul>> matmulCache;

std::string geomKey(const ConvGeom& g) {
  return key({&g.x, &g.w, &g.y, &g.strides, &g.dil, &g.padL, &g.padR});
}

// conv2dForward(x, xShape, filter, filterShape, yShape, strides, pads[t,b,l,r], dilations) -> y
Napi::Value Conv2dForward(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto g = geomOf(info, 1, 3, 4, 5, 6, 7);
    float* x = dataOf(info[0], prod(g.x), "x");
    float* w = dataOf(info[2], prod(g.w), "filter");
    auto& e = fwdCache[geomKey(g)];
    if (!e) {
      auto pd = fwdPd(g);
      e = std::make_unique<ConvFwd>();
      e->prim = dnnl::convolution_forward(pd);
      e->w.init(wMd(g.w), pd.weights_desc());
    }
    auto out = newOutput(info.Env(), prod(g.y));
    memory wm = e->w.get(w);
    e->prim.execute(strm(), {{DNNL_ARG_SRC, memory(actMd(g.x), eng(), x)},
                             {DNNL_ARG_WEIGHTS, wm},
                             {DNNL_ARG_DST, memory(actMd(g.y), eng(), out.Data())}});
    strm().wait();
    return out;
  });
}

// conv2dFused(x, xShape, filter, filterShape, yShape, strides, pads, dilations, bias | null, relu, residual?) -> y
// Inference convolution with an optional per-output-channel bias, an optional residual added to the
// result (a ResNet block's shortcut: oneDNN's sum post-op) and an optional ReLU post-op after it
// (tfjs FusedConv2D with activation 'linear' or 'relu'; the residual form is the MocoConvResidual kernel).
Napi::Value Conv2dFused(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto g = geomOf(info, 1, 3, 4, 5, 6, 7);
    float* x = dataOf(info[0], prod(g.x), "x");
    float* w = dataOf(info[2], prod(g.w), "filter");
    const bool hasBias = info.Length() > 8 && info[8].IsTypedArray();
    float* b = hasBias ? dataOf(info[8], g.y[3], "bias") : nullptr;
    const bool relu = info.Length() > 9 && info[9].ToBoolean().Value();
    const bool hasResidual = info.Length() > 10 && info[10].IsTypedArray();
    float* residual = hasResidual ? dataOf(info[10], prod(g.y), "residual") : nullptr;
    const std::vector<int64_t> flags = {hasBias, relu, hasResidual};
    auto& e = fusedCache[geomKey(g) + key({&flags})];
    if (!e) {
      const memory::desc bMd({g.y[3]}, dt::f32, tag::x);
      dnnl::primitive_attr attr;
      dnnl::post_ops ops;
      // sum: dst = conv + dst, dst holding the residual on entry.
      if (hasResidual) ops.append_sum(1.f);
      if (relu) ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
      attr.set_post_ops(ops);
      auto pdOf = [&](dnnl::algorithm algo, tag layout) {
        const auto src = actMd(g.x, layout), dst = actMd(g.y, layout), w = wMd(g.w, tag::any);
        auto d = hasBias ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, algo, src, w, bMd, dst,
                                                           g.strides, g.dil, g.padL, g.padR)
                         : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, algo, src, w, dst, g.strides,
                                                           g.dil, g.padL, g.padR);
        return dnnl::convolution_forward::primitive_desc(d, attr, eng());
      };
      e = std::make_unique<ConvInfer>();
      dnnl::convolution_forward::primitive_desc pd;
      if (winogradPays(g)) {
        try {
          pd = pdOf(dnnl::algorithm::convolution_winograd, tag::any);
          e->winograd = true;
        } catch (const dnnl::error&) {
          // No Winograd implementation for this CPU (oneDNN 2.6 has f32 Winograd for AVX-512 only).
        }
      }
      if (!e->winograd) pd = pdOf(dnnl::algorithm::convolution_direct, tag::nhwc);
      e->prim = dnnl::convolution_forward(pd);
      e->wUser = wMd(g.w);
      e->wWant = pd.weights_desc();
      e->src = pd.src_desc();
      e->dst = pd.dst_desc();
    }
    auto out = newOutput(info.Env(), prod(g.y));
    memory wm = packedWeights(info.Env(), info[2].As<Napi::Object>(), e->wUser, e->wWant, w);
    memory xUser(actMd(g.x), eng(), x), yUser(actMd(g.y), eng(), out.Data());
    memory src = xUser, dst = yUser;
    if (e->winograd) {
      src = memory(e->src, eng());
      dst = memory(e->dst, eng());
      dnnl::reorder(xUser, src).execute(strm(), xUser, src);
      if (hasResidual) {
        memory rUser(actMd(g.y), eng(), residual);
        dnnl::reorder(rUser, dst).execute(strm(), rUser, dst);
      }
    } else if (hasResidual) {
      std::memcpy(out.Data(), residual, sizeof(float) * prod(g.y));
    }
    std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, dst}};
    if (hasBias) args.insert({DNNL_ARG_BIAS, memory({{g.y[3]}, dt::f32, tag::x}, eng(), b)});
    e->prim.execute(strm(), args);
    if (e->winograd) dnnl::reorder(dst, yUser).execute(strm(), dst, yUser);
    strm().wait();
    return out;
  });
}

// conv2dBackwardData(dy, yShape, filter, filterShape, xShape, strides, pads, dilations) -> dx
Napi::Value Conv2dBackwardData(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto g = geomOf(info, 4, 3, 1, 5, 6, 7);
    float* dy = dataOf(info[0], prod(g.y), "dy");
    float* w = dataOf(info[2], prod(g.w), "filter");
    auto& e = bwdDataCache[geomKey(g)];
    if (!e) {
      auto hint = fwdPd(g);
      auto d = dnnl::convolution_backward_data::desc(dnnl::algorithm::convolution_direct, actMd(g.x),
                                                     wMd(g.w, tag::any), actMd(g.y), g.strides, g.dil, g.padL,
                                                     g.padR);
      auto pd = dnnl::convolution_backward_data::primitive_desc(d, eng(), hint);
      e = std::make_unique<ConvBwdData>();
      e->prim = dnnl::convolution_backward_data(pd);
      e->w.init(wMd(g.w), pd.weights_desc());
    }
    auto out = newOutput(info.Env(), prod(g.x));
    memory wm = e->w.get(w);
    e->prim.execute(strm(), {{DNNL_ARG_DIFF_DST, memory(actMd(g.y), eng(), dy)},
                             {DNNL_ARG_WEIGHTS, wm},
                             {DNNL_ARG_DIFF_SRC, memory(actMd(g.x), eng(), out.Data())}});
    strm().wait();
    return out;
  });
}

// conv2dBackwardWeights(x, xShape, dy, yShape, filterShape, strides, pads, dilations) -> dFilter (HWIO)
Napi::Value Conv2dBackwardWeights(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const auto g = geomOf(info, 1, 4, 3, 5, 6, 7);
    float* x = dataOf(info[0], prod(g.x), "x");
    float* dy = dataOf(info[2], prod(g.y), "dy");
    // oneDNN 2.6's jit:avx2 backward-weights with a padded blocked diff_weights (channels not a multiple
    // of 8, e.g. 3->4 or 4->4) corrupts the heap (malloc aborts), and the gemm fallback is slow (the
    // CIFAR stem's 3 input channels: about a tenth of a width-16 training step). When only the input
    // channels are off, they are zero-padded up to a multiple of 8 here: the padded channels' weight
    // gradients are dropped, the others are exactly what the unpadded convolution's would be.
    const int64_t ic = g.w[2], oc = g.w[3], icPadded = (ic + 7) / 8 * 8;
    const bool padInput = ic % 8 != 0 && oc % 8 == 0;
    ConvGeom gp = g;
    if (padInput) gp.x[3] = gp.w[2] = icPadded;
    const bool blockedOk = gp.w[2] % 8 == 0 && gp.w[3] % 8 == 0;
    auto& e = bwdWeightsCache[geomKey(gp)];
    if (!e) {
      auto hint = fwdPd(gp);
      // Where channels stay off a multiple of 8, plain hwio (oneDNN then runs gemm).
      auto d = dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct, actMd(gp.x),
                                                        wMd(gp.w, blockedOk ? tag::any : tag::hwio), actMd(gp.y),
                                                        gp.strides, gp.dil, gp.padL, gp.padR);
      auto pd = dnnl::convolution_backward_weights::primitive_desc(d, eng(), hint);
      e = std::make_unique<ConvBwdWeights>();
      e->prim = dnnl::convolution_backward_weights(pd);
      e->user = wMd(gp.w);
      e->got = pd.diff_weights_desc();
      e->needed = e->user != e->got;
      if (e->needed) {
        e->buf = memory(e->got, eng());
        e->out = dnnl::reorder(e->buf, memory(e->user, eng(), DNNL_MEMORY_NONE));
      }
    }
    auto out = newOutput(info.Env(), prod(g.w));
    thread_local std::vector<float> xPadded, wPadded;
    float* src = x;
    float* dst = out.Data();
    if (padInput) {
      const int64_t pixels = g.x[0] * g.x[1] * g.x[2];
      xPadded.assign(pixels * icPadded, 0.f);
      for (int64_t p = 0; p < pixels; p++) std::memcpy(&xPadded[p * icPadded], x + p * ic, sizeof(float) * ic);
      wPadded.resize(prod(gp.w));
      src = xPadded.data();
      dst = wPadded.data();
    }
    memory userW(e->user, eng(), dst);
    e->prim.execute(strm(), {{DNNL_ARG_SRC, memory(actMd(gp.x), eng(), src)},
                             {DNNL_ARG_DIFF_DST, memory(actMd(gp.y), eng(), dy)},
                             {DNNL_ARG_DIFF_WEIGHTS, e->needed ? e->buf : userW}});
    if (e->needed) e->out.execute(strm(), e->buf, userW);
    strm().wait();
    if (padInput) {
      // HWIO: [kh, kw, icPadded, oc] -> [kh, kw, ic, oc]
      for (int64_t k = 0; k < g.w[0] * g.w[1]; k++)
        std::memcpy(out.Data() + k * ic * oc, &wPadded[k * icPadded * oc], sizeof(float) * ic * oc);
    }
    return out;
  });
}

// matmul(a, b, batchA, batchB, m, k, n, transposeA, transposeB) -> c [max(batchA,batchB), m, n]
// a is [batchA, m, k] (or [batchA, k, m] when transposed), b is [batchB, k, n] (or [batchB, n, k]).
Napi::Value MatMulFn(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    int64_t ba = info[2].As<Napi::Number>().Int64Value(), bb = info[3].As<Napi::Number>().Int64Value();
    int64_t m = info[4].As<Napi::Number>().Int64Value(), k = info[5].As<Napi::Number>().Int64Value(),
            n = info[6].As<Napi::Number>().Int64Value();
    bool ta = info[7].As<Napi::Boolean>().Value(), tb = info[8].As<Napi::Boolean>().Value();
    int64_t bc = ba > bb ? ba : bb;
    if ((ba != bc && ba != 1) || (bb != bc && bb != 1))
      throw Napi::RangeError::New(info.Env(), "matmul: batch sizes do not broadcast");
    float* a = dataOf(info[0], ba * m * k, "a");
    float* b = dataOf(info[1], bb * k * n, "b");
    std::vector<int64_t> kv = {ba, bb, m, k, n, ta, tb};
    auto& e = matmulCache[key({&kv})];
    if (!e) {
      e = std::make_unique<MatMul>();
      e->a = memory::desc({ba, m, k}, dt::f32, ta ? memory::dims{m * k, 1, m} : memory::dims{m * k, k, 1});
      e->b = memory::desc({bb, k, n}, dt::f32, tb ? memory::dims{k * n, 1, k} : memory::dims{k * n, n, 1});
      e->c = memory::desc({bc, m, n}, dt::f32, memory::dims{m * n, n, 1});
      auto d = dnnl::matmul::desc(e->a, e->b, e->c);
      e->prim = dnnl::matmul(dnnl::matmul::primitive_desc(d, eng()));
    }
    auto out = newOutput(info.Env(), bc * m * n);
    e->prim.execute(strm(), {{DNNL_ARG_SRC, memory(e->a, eng(), a)},
                             {DNNL_ARG_WEIGHTS, memory(e->b, eng(), b)},
                             {DNNL_ARG_DST, memory(e->c, eng(), out.Data())}});
    strm().wait();
    return out;
  });
}


// ---- elementwise (the tfjs cpu backend's broadcasting binary ops take ~30 ms per 2M elements) ----

// Below this many elements a parallel region costs more than it saves: with OMP_WAIT_POLICY=PASSIVE
// (index.ts) each region wakes a sleeping thread (tens of microseconds), about what 2^15 elements take.
constexpr int64_t kParallelMin = 1 << 17;
// Reductions sum blocks of this many elements (a fixed size, so results do not depend on the thread count).
constexpr int64_t kSumBlock = 1 << 14;

bool goParallel(int64_t work) { return work >= kParallelMin && omp_get_max_threads() > 1 && !omp_in_parallel(); }

// f(begin, end) over [0, n) split in one contiguous range per thread (multiples of 16 elements, 64 bytes);
// serial when the work (default n) is small.
template <typename F>
void parallelRange(int64_t n, F f, int64_t work = -1) {
  if (!goParallel(work < 0 ? n : work)) {
    f(int64_t{0}, n);
    return;
  }
#pragma omp parallel
  {
    const int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t chunk = ((n + nt - 1) / nt + 15) / 16 * 16;
    const int64_t b = std::min(n, t * chunk), e = std::min(n, b + chunk);
    if (b < e) f(b, e);
  }
}

enum BinOp { kAdd = 0, kSub = 1, kMul = 2, kDiv = 3, kMax = 4, kMin = 5, kSqDiff = 6 };

template <int OP>
inline float apply(float a, float b) {
  if constexpr (OP == kAdd) return a + b;
  if constexpr (OP == kSub) return a - b;
  if constexpr (OP == kMul) return a * b;
  if constexpr (OP == kDiv) return a / b;
  if constexpr (OP == kMax) return (a != a || b != b) ? NAN : (a > b ? a : b);
  if constexpr (OP == kMin) return (a != a || b != b) ? NAN : (a < b ? a : b);
  if constexpr (OP == kSqDiff) return (a - b) * (a - b);
  return 0;
}

template <int OP>
void inner(const float* a, int64_t sa, const float* b, int64_t sb, float* o, int64_t n) {
  if (sa == 1 && sb == 1) {
    for (int64_t i = 0; i < n; i++) o[i] = apply<OP>(a[i], b[i]);
  } else if (sa == 1 && sb == 0) {
    const float bv = *b;
    for (int64_t i = 0; i < n; i++) o[i] = apply<OP>(a[i], bv);
  } else if (sa == 0 && sb == 1) {
    const float av = *a;
    for (int64_t i = 0; i < n; i++) o[i] = apply<OP>(av, b[i]);
  } else {
    for (int64_t i = 0; i < n; i++) o[i] = apply<OP>(a[i * sa], b[i * sb]);
  }
}

// Output elements [begin, end) of the broadcast (row-major over dims; a and b strided by sa, sb).
template <int OP>
void binaryRange(const float* a, const float* b, float* o, const std::vector<int64_t>& dims,
                 const std::vector<int64_t>& sa, const std::vector<int64_t>& sb, int64_t begin, int64_t end) {
  const size_t r = dims.size();
  const int64_t n = dims[r - 1], la = sa[r - 1], lb = sb[r - 1];
  std::vector<int64_t> idx(r, 0);
  int64_t offA = 0, offB = 0, rest = begin / n, col = begin % n;
  for (int64_t d = static_cast<int64_t>(r) - 2; d >= 0; d--) {
    idx[d] = rest % dims[d];
    rest /= dims[d];
    offA += idx[d] * sa[d];
    offB += idx[d] * sb[d];
  }
  for (int64_t pos = begin; pos < end;) {
    const int64_t len = std::min(n - col, end - pos);
    inner<OP>(a + offA + col * la, la, b + offB + col * lb, lb, o + pos, len);
    pos += len;
    col = 0;
    for (int64_t d = static_cast<int64_t>(r) - 2; d >= 0; d--) {
      if (++idx[d] < dims[d]) {
        offA += sa[d];
        offB += sb[d];
        break;
      }
      offA -= sa[d] * (dims[d] - 1);
      offB -= sb[d] * (dims[d] - 1);
      idx[d] = 0;
    }
  }
}

template <int OP>
void binaryLoop(const float* a, const float* b, float* o, const std::vector<int64_t>& dims,
                const std::vector<int64_t>& sa, const std::vector<int64_t>& sb) {
  parallelRange(prod(dims), [&](int64_t begin, int64_t end) { binaryRange<OP>(a, b, o, dims, sa, sb, begin, end); });
}

// binary(op, a, aShape, b, bShape, outShape) -> out; numpy broadcasting (shapes right-aligned).
Napi::Value Binary(const Napi::CallbackInfo& info) {
  int op = info[0].As<Napi::Number>().Int32Value();
  auto oshape = [&](int i) {
    auto arr = info[i].As<Napi::Array>();
    std::vector<int64_t> d(arr.Length());
    for (uint32_t j = 0; j < arr.Length(); j++) d[j] = arr.Get(j).As<Napi::Number>().Int64Value();
    return d;
  };
  auto as = oshape(2), bs = oshape(4), os = oshape(5);
  const size_t r = os.size();
  float* a = dataOf(info[1], prod(as), "a");
  float* b = dataOf(info[3], prod(bs), "b");
  auto out = newOutput(info.Env(), prod(os));
  if (prod(os) == 0) return out;
  // Broadcast strides, right-aligned.
  std::vector<int64_t> sa(r, 0), sb(r, 0);
  auto strides = [&](const std::vector<int64_t>& s, std::vector<int64_t>& st) {
    int64_t acc = 1;
    for (int64_t i = static_cast<int64_t>(s.size()) - 1, j = static_cast<int64_t>(r) - 1; i >= 0; i--, j--) {
      st[j] = s[i] == 1 ? 0 : acc;
      acc *= s[i];
    }
  };
  strides(as, sa);
  strides(bs, sb);
  // Merge adjacent dims that keep both operands' strides contiguous; drop size-1 dims.
  std::vector<int64_t> d2, sa2, sb2;
  for (size_t i = 0; i < r; i++) {
    if (os[i] == 1) continue;
    if (!d2.empty() && sa2.back() == sa[i] * os[i] && sb2.back() == sb[i] * os[i]) {
      d2.back() *= os[i];
      sa2.back() = sa[i];
      sb2.back() = sb[i];
    } else {
      d2.push_back(os[i]);
      sa2.push_back(sa[i]);
      sb2.push_back(sb[i]);
    }
  }
  if (d2.empty()) {
    d2 = {1};
    sa2 = {0};
    sb2 = {0};
  }
  float* o = out.Data();
  switch (op) {
    case kAdd: binaryLoop<kAdd>(a, b, o, d2, sa2, sb2); break;
    case kSub: binaryLoop<kSub>(a, b, o, d2, sa2, sb2); break;
    case kMul: binaryLoop<kMul>(a, b, o, d2, sa2, sb2); break;
    case kDiv: binaryLoop<kDiv>(a, b, o, d2, sa2, sb2); break;
    case kMax: binaryLoop<kMax>(a, b, o, d2, sa2, sb2); break;
    case kMin: binaryLoop<kMin>(a, b, o, d2, sa2, sb2); break;
    case kSqDiff: binaryLoop<kSqDiff>(a, b, o, d2, sa2, sb2); break;
    default: throw Napi::RangeError::New(info.Env(), "binary: unknown op");
  }
  return out;
}

enum UnOp { kRelu = 0, kStep = 1, kSquare = 2, kRsqrt = 3, kNeg = 4, kSqrt = 5, kExp = 6 };

template <typename F>
void unaryLoop(const float* x, float* o, int64_t n, F f) {
  parallelRange(n, [&](int64_t b, int64_t e) {
    // A local copy: read through the captured reference, a lambda's captures (Step's alpha) could alias
    // o[] for all the compiler knows, so it reloaded them every element and did not vectorise.
    const F g = f;
    for (int64_t i = b; i < e; i++) o[i] = g(x[i]);
  });
}

// unary(op, x, alpha) -> out
Napi::Value Unary(const Napi::CallbackInfo& info) {
  int op = info[0].As<Napi::Number>().Int32Value();
  auto x = info[1].As<Napi::Float32Array>();
  float alpha = info.Length() > 2 ? info[2].As<Napi::Number>().FloatValue() : 0.f;
  const int64_t n = static_cast<int64_t>(x.ElementLength());
  const float* xi = x.Data();
  auto out = newOutput(info.Env(), n);
  float* o = out.Data();
  switch (op) {
    case kRelu: unaryLoop(xi, o, n, [](float v) { return v < 0.f ? 0.f : v; }); break;  // NaN passes through
    case kStep: unaryLoop(xi, o, n, [alpha](float v) { return v != v ? NAN : (v > 0.f ? 1.f : alpha); }); break;
    case kSquare: unaryLoop(xi, o, n, [](float v) { return v * v; }); break;
    // In double, rounded once, as the cpu backend's 1 / Math.sqrt(x) (float sqrt then divide is off by an ulp).
    case kRsqrt: unaryLoop(xi, o, n, [](float v) { return static_cast<float>(1.0 / std::sqrt(static_cast<double>(v))); }); break;
    case kNeg: unaryLoop(xi, o, n, [](float v) { return -v; }); break;
    case kSqrt: unaryLoop(xi, o, n, [](float v) { return std::sqrt(v); }); break;
    // In double, rounded once, as the cpu backend's Math.exp.
    case kExp: unaryLoop(xi, o, n, [](float v) { return static_cast<float>(std::exp(static_cast<double>(v))); }); break;
    default: throw Napi::RangeError::New(info.Env(), "unary: unknown op");
  }
  return out;
}

// reduce(x, shape, axes, mean) -> out (reduced axes removed); sums in double per output element.
// The two layouts training uses are parallel: [outer reduced, inner kept] (batch-norm statistics over
// N,H,W of NHWC) and [outer kept, inner reduced] (row sums, full sums). Each sums fixed-size blocks
// (kSumBlock elements) into double partials, one block per task, then adds the partials in block order,
// so a result depends on the shape only, never on the thread count; tensors of one block sum serially.
// Other layouts run the serial strided loop.
Napi::Value Reduce(const Napi::CallbackInfo& info) {
  auto shapeArr = info[1].As<Napi::Array>();
  auto axesArr = info[2].As<Napi::Array>();
  bool mean = info[3].As<Napi::Boolean>().Value();
  const size_t r = shapeArr.Length();
  std::vector<int64_t> shape(r);
  for (uint32_t i = 0; i < r; i++) shape[i] = shapeArr.Get(i).As<Napi::Number>().Int64Value();
  std::vector<bool> reduced(r, false);
  for (uint32_t i = 0; i < axesArr.Length(); i++) reduced[axesArr.Get(i).As<Napi::Number>().Int32Value()] = true;
  float* x = dataOf(info[0], prod(shape), "x");
  // Output strides (0 on reduced axes).
  std::vector<int64_t> so(r, 0);
  int64_t outSize = 1, count = 1;
  for (int64_t i = static_cast<int64_t>(r) - 1; i >= 0; i--) {
    if (reduced[i]) {
      count *= shape[i];
    } else {
      so[i] = outSize;
      outSize *= shape[i];
    }
  }
  // Merge adjacent dims with the same kind; drop size-1 dims.
  std::vector<int64_t> d2, s2;
  for (size_t i = 0; i < r; i++) {
    if (shape[i] == 1) continue;
    if (!d2.empty() && s2.back() == so[i] * shape[i]) {
      d2.back() *= shape[i];
      s2.back() = so[i];
    } else {
      d2.push_back(shape[i]);
      s2.push_back(so[i]);
    }
  }
  std::vector<double> acc(outSize, 0.0);
  auto out = newOutput(info.Env(), outSize);
  const size_t q = d2.size();
  if (q > 0 && prod(d2) == 0) {
    // empty input: zeros (mean: NaN, as 0 / 0)
  } else if ((q == 1 && s2[0] == 0) || (q == 2 && s2[0] == 1 && s2[1] == 0)) {
    // [rows kept, n reduced]: out[i] = sum(x[i*n : (i+1)*n]).
    const int64_t rows = q == 1 ? 1 : d2[0], n = d2[q - 1];
    const int64_t nb = (n + kSumBlock - 1) / kSumBlock;
    std::vector<double> part(rows * nb);
#pragma omp parallel for schedule(static) if (goParallel(rows * n))
    for (int64_t t = 0; t < rows * nb; t++) {
      const int64_t row = t / nb, b0 = (t % nb) * kSumBlock, b1 = std::min(n, b0 + kSumBlock);
      const float* px = x + row * n;
      double s = 0;
      for (int64_t i = b0; i < b1; i++) s += px[i];
      part[t] = s;
    }
    for (int64_t row = 0; row < rows; row++)
      for (int64_t b = 0; b < nb; b++) acc[row] += part[row * nb + b];
  } else if (q == 2 && s2[0] == 0 && s2[1] == 1) {
    // [m reduced, c kept]: out[j] = sum_i x[i*c + j].
    const int64_t m = d2[0], c = d2[1];
    const int64_t rowsPerBlock = std::max<int64_t>(1, kSumBlock / c), nb = (m + rowsPerBlock - 1) / rowsPerBlock;
    if (nb == 1) {
      // One block: split the kept columns instead (each column still summed in row order).
      parallelRange(c, [&](int64_t j0, int64_t j1) {
        for (int64_t i = 0; i < m; i++) {
          const float* px = x + i * c;
          for (int64_t j = j0; j < j1; j++) acc[j] += px[j];
        }
      }, m * c);
    } else {
      std::vector<double> part(nb * c, 0.0);
#pragma omp parallel for schedule(static) if (goParallel(m * c))
      for (int64_t b = 0; b < nb; b++) {
        double* pa = part.data() + b * c;
        const int64_t i1 = std::min(m, (b + 1) * rowsPerBlock);
        for (int64_t i = b * rowsPerBlock; i < i1; i++) {
          const float* px = x + i * c;
          for (int64_t j = 0; j < c; j++) pa[j] += px[j];
        }
      }
      for (int64_t b = 0; b < nb; b++)
        for (int64_t j = 0; j < c; j++) acc[j] += part[b * c + j];
    }
  } else if (q > 0) {
    const int64_t n = d2[q - 1], sn = s2[q - 1];
    int64_t outer = prod(d2) / n;
    std::vector<int64_t> idx(q, 0);
    int64_t off = 0;
    const float* px = x;
    for (int64_t it = 0; it < outer; it++, px += n) {
      if (sn == 0) {
        double t = 0;
        for (int64_t i = 0; i < n; i++) t += px[i];
        acc[off] += t;
      } else {
        double* a = acc.data() + off;
        for (int64_t i = 0; i < n; i++) a[i] += px[i];
      }
      for (int64_t d = static_cast<int64_t>(q) - 2; d >= 0; d--) {
        if (++idx[d] < d2[d]) {
          off += s2[d];
          break;
        }
        off -= s2[d] * (d2[d] - 1);
        idx[d] = 0;
      }
    }
  } else if (outSize == 1) {
    acc[0] = x[0];
  }
  float* o = out.Data();
  for (int64_t i = 0; i < outSize; i++) o[i] = static_cast<float>(mean ? acc[i] / count : acc[i]);
  return out;
}

// ---- training-mode batch normalisation (split BN, NHWC) ----
// Sample n belongs to split n % S (the CIFAR demo's SplitBatchNorm); statistics are per split and channel.
// Each sample's sums go to a partial of its own, then the partials of a split are added in sample order,
// so results depend on the shape only, never on the thread count.

struct BnGeom {
  int64_t n, pixels, c, s;
  int64_t count() const { return (n / s) * pixels; }
};

BnGeom bnGeomOf(const Napi::CallbackInfo& info, int shapeArg, int splitsArg) {
  auto shape = dimsOf(info[shapeArg], 4, "shape");
  BnGeom g{shape[0], shape[1] * shape[2], shape[3], info[splitsArg].As<Napi::Number>().Int64Value()};
  if (g.s < 1 || g.n % g.s != 0) throw Napi::RangeError::New(info.Env(), "batchNorm: splits must divide the batch");
  return g;
}

// out[s*C + c] = sum over the samples of split s of f(sample, pixel row, per-channel partial row).
template <typename F>
std::vector<double> perSplitSums(const BnGeom& g, int64_t width, F f) {
  std::vector<double> partial(g.n * width, 0.0);
#pragma omp parallel for schedule(static) if (goParallel(g.n * g.pixels * g.c))
  for (int64_t i = 0; i < g.n; i++) f(i, partial.data() + i * width);
  std::vector<double> out(g.s * width, 0.0);
  for (int64_t i = 0; i < g.n; i++) {
    double* o = out.data() + (i % g.s) * width;
    const double* p = partial.data() + i * width;
    for (int64_t j = 0; j < width; j++) o[j] += p[j];
  }
  return out;
}

Napi::Float32Array floatsOf(Napi::Env env, const std::vector<double>& v) {
  auto out = Napi::Float32Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); i++) out[i] = static_cast<float>(v[i]);
  return out;
}

// y = relu?(x * scale + shift + residual?), scale and shift per split and channel. Templated so that each
// variant's inner loop has no branches and vectorises.
template <bool RES, bool RELU>
void bnApply(const BnGeom& g, const float* x, const float* res, const float* scale, const float* shift, float* y) {
  const int64_t C = g.c, P = g.pixels;
#pragma omp parallel for schedule(static) if (goParallel(g.n * P * C))
  for (int64_t i = 0; i < g.n; i++) {
    const float* sc = scale + (i % g.s) * C;
    const float* sh = shift + (i % g.s) * C;
    const int64_t o = i * P * C;
    for (int64_t p = 0; p < P; p++) {
      const float* px = x + o + p * C;
      const float* pr = RES ? res + o + p * C : nullptr;
      float* py = y + o + p * C;
      for (int64_t c = 0; c < C; c++) {
        float v = px[c] * sc[c] + sh[c];
        if constexpr (RES) v += pr[c];
        if constexpr (RELU) v = v < 0.f ? 0.f : v;
        py[c] = v;
      }
    }
  }
}

// The backward's first pass over one sample: dz = dy, masked where y <= 0 when MASK (and stored to dz
// when STORE); acc[c] += dz, acc[C + c] += dz * xhat.
template <bool MASK, bool STORE>
void bnGradSums(int64_t P, int64_t C, const float* dy, const float* x, const float* y, const float* mean, const float* invStd,
                float* dz, double* acc) {
  // float partials over runs of 64 pixels (they vectorise), folded into the double accumulators.
  std::vector<float> s1(C, 0.f), s2(C, 0.f);
  for (int64_t p = 0; p < P; p++) {
    const int64_t b = p * C;
    for (int64_t c = 0; c < C; c++) {
      float d = dy[b + c];
      if constexpr (MASK) d = y[b + c] > 0.f ? d : 0.f;
      if constexpr (STORE) dz[b + c] = d;
      s1[c] += d;
      s2[c] += d * ((x[b + c] - mean[c]) * invStd[c]);
    }
    if ((p & 63) == 63 || p == P - 1) {
      for (int64_t c = 0; c < C; c++) {
        acc[c] += s1[c];
        acc[C + c] += s2[c];
        s1[c] = 0.f;
        s2[c] = 0.f;
      }
    }
  }
}

// batchNormTrain(x, shape, gamma, beta, residual | null, splits, eps, relu) -> [y, mean [S, C], variance [S, C]]
// y = relu?((x - mean) / sqrt(var + eps) * gamma + beta + residual), the variance biased (running
// statistics are the caller's). Three passes over x: sums, centred squares, output.
Napi::Value BatchNormTrain(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  const BnGeom g = bnGeomOf(info, 1, 5);
  const int64_t total = g.n * g.pixels * g.c, C = g.c, P = g.pixels;
  const float* x = dataOf(info[0], total, "x");
  const float* gamma = dataOf(info[2], C, "gamma");
  const float* beta = dataOf(info[3], C, "beta");
  const float* res = info[4].IsTypedArray() ? dataOf(info[4], total, "residual") : nullptr;
  const double eps = info[6].As<Napi::Number>().DoubleValue();
  const bool relu = info[7].ToBoolean().Value();
  const double count = static_cast<double>(g.count());
  // Float partials over runs of 64 pixels (they vectorise), folded into double accumulators.
  auto mean = perSplitSums(g, C, [&](int64_t i, double* acc) {
    std::vector<float> part(C, 0.f);
    const float* px = x + i * P * C;
    for (int64_t p = 0; p < P; p++, px += C) {
      for (int64_t c = 0; c < C; c++) part[c] += px[c];
      if ((p & 63) == 63 || p == P - 1)
        for (int64_t c = 0; c < C; c++) acc[c] += part[c], part[c] = 0.f;
    }
  });
  for (auto& m : mean) m /= count;
  auto var = perSplitSums(g, C, [&](int64_t i, double* acc) {
    std::vector<float> part(C, 0.f), m(mean.begin() + (i % g.s) * C, mean.begin() + (i % g.s + 1) * C);
    const float* px = x + i * P * C;
    for (int64_t p = 0; p < P; p++, px += C) {
      for (int64_t c = 0; c < C; c++) {
        const float d = px[c] - m[c];
        part[c] += d * d;
      }
      if ((p & 63) == 63 || p == P - 1)
        for (int64_t c = 0; c < C; c++) acc[c] += part[c], part[c] = 0.f;
    }
  });
  for (auto& v : var) v /= count;
  // y = x * scale + shift per split and channel.
  std::vector<float> scale(g.s * C), shift(g.s * C);
  for (int64_t j = 0; j < g.s * C; j++) {
    const double k = gamma[j % C] / std::sqrt(var[j] + eps);
    scale[j] = static_cast<float>(k);
    shift[j] = static_cast<float>(beta[j % C] - mean[j] * k);
  }
  auto out = newOutput(env, total);
  float* y = out.Data();
  if (res && relu) bnApply<true, true>(g, x, res, scale.data(), shift.data(), y);
  else if (res) bnApply<true, false>(g, x, res, scale.data(), shift.data(), y);
  else if (relu) bnApply<false, true>(g, x, res, scale.data(), shift.data(), y);
  else bnApply<false, false>(g, x, res, scale.data(), shift.data(), y);
  auto result = Napi::Array::New(env, 3);
  result.Set(0u, out);
  result.Set(1u, floatsOf(env, mean));
  result.Set(2u, floatsOf(env, var));
  return result;
}

// Per split and channel: the backward's coefficients.
struct BnGradDx {
  const float *mean, *invStd, *k, *meanDz, *meanDzXhat;
};

// The backward's second pass: dx = (dz - mean(dz) - xhat * mean(dz * xhat)) * gamma * invStd, where dz is
// `grad`, masked where y <= 0 when MASK.
template <bool MASK>
void bnGradDx(const BnGeom& g, const float* grad, const float* x, const float* y, const BnGradDx& d, float* dx) {
  const int64_t C = g.c, P = g.pixels;
#pragma omp parallel for schedule(static) if (goParallel(g.n * P * C))
  for (int64_t i = 0; i < g.n; i++) {
    const int64_t sc = (i % g.s) * C, o = i * P * C;
    const float *m = d.mean + sc, *is = d.invStd + sc, *kk = d.k + sc, *md = d.meanDz + sc, *mdx = d.meanDzXhat + sc;
    for (int64_t p = 0; p < P; p++) {
      const int64_t base = o + p * C;
      for (int64_t c = 0; c < C; c++) {
        float dz = grad[base + c];
        if constexpr (MASK) dz = y[base + c] > 0.f ? dz : 0.f;
        const float xhat = (x[base + c] - m[c]) * is[c];
        dx[base + c] = (dz - md[c] - xhat * mdx[c]) * kk[c];
      }
    }
  }
}

// batchNormTrainGrad(dy, x, shape, y | null, gamma, mean, variance, splits, eps, wantResidual)
//   -> [dx, dgamma [C], dbeta [C], dresidual?]
// The backward of batchNormTrain: with y given (the forward had a ReLU) the gradient first passes the
// ReLU (dz = dy where y > 0); dresidual is dz. x-hat is recomputed from x, so the forward keeps no
// normalised copy of its input alive for this.
Napi::Value BatchNormTrainGrad(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  const BnGeom g = bnGeomOf(info, 2, 7);
  const int64_t total = g.n * g.pixels * g.c, C = g.c, P = g.pixels;
  const float* dy = dataOf(info[0], total, "dy");
  const float* x = dataOf(info[1], total, "x");
  const float* y = info[3].IsTypedArray() ? dataOf(info[3], total, "y") : nullptr;
  const float* gamma = dataOf(info[4], C, "gamma");
  const float* meanIn = dataOf(info[5], g.s * C, "mean");
  const float* varIn = dataOf(info[6], g.s * C, "variance");
  const double eps = info[8].As<Napi::Number>().DoubleValue();
  const bool wantResidual = info[9].ToBoolean().Value();
  const double count = static_cast<double>(g.count());
  std::vector<float> mean(meanIn, meanIn + g.s * C), invStd(g.s * C);
  for (int64_t j = 0; j < g.s * C; j++) invStd[j] = static_cast<float>(1.0 / std::sqrt(static_cast<double>(varIn[j]) + eps));
  // dz (dy through the ReLU) is written out only as dresidual; otherwise the dx pass masks dy again.
  Napi::Float32Array dres;
  float* dz = nullptr;
  if (wantResidual) {
    dres = newOutput(env, total);
    dz = dres.Data();
  }
  // Per split and channel: sum dz (columns [0, C)) and sum dz * xhat (columns [C, 2C)).
  auto sums = perSplitSums(g, 2 * C, [&](int64_t i, double* acc) {
    const int64_t o = i * P * C, sc = (i % g.s) * C;
    const float *m = mean.data() + sc, *is = invStd.data() + sc;
    if (y && dz) bnGradSums<true, true>(P, C, dy + o, x + o, y + o, m, is, dz + o, acc);
    else if (y) bnGradSums<true, false>(P, C, dy + o, x + o, y + o, m, is, nullptr, acc);
    else if (dz) bnGradSums<false, true>(P, C, dy + o, x + o, nullptr, m, is, dz + o, acc);
    else bnGradSums<false, false>(P, C, dy + o, x + o, nullptr, m, is, nullptr, acc);
  });
  std::vector<float> k(g.s * C), meanDz(g.s * C), meanDzXhat(g.s * C);
  std::vector<double> dgamma(C, 0.0), dbeta(C, 0.0);
  for (int64_t s = 0; s < g.s; s++)
    for (int64_t c = 0; c < C; c++) {
      const int64_t j = s * C + c;
      const double sdz = sums[s * 2 * C + c], sdzx = sums[s * 2 * C + C + c];
      meanDz[j] = static_cast<float>(sdz / count);
      meanDzXhat[j] = static_cast<float>(sdzx / count);
      k[j] = gamma[c] * invStd[j];
      dbeta[c] += sdz;
      dgamma[c] += sdzx;
    }
  auto dxOut = newOutput(env, total);
  const BnGradDx d{mean.data(), invStd.data(), k.data(), meanDz.data(), meanDzXhat.data()};
  if (dz) bnGradDx<false>(g, dz, x, nullptr, d, dxOut.Data());
  else if (y) bnGradDx<true>(g, dy, x, y, d, dxOut.Data());
  else bnGradDx<false>(g, dy, x, nullptr, d, dxOut.Data());
  auto result = Napi::Array::New(env, wantResidual ? 4 : 3);
  result.Set(0u, dxOut);
  result.Set(1u, floatsOf(env, dgamma));
  result.Set(2u, floatsOf(env, dbeta));
  if (wantResidual) result.Set(3u, dres);
  return result;
}

// ---- optimiser passes over the parameters ----

// sgdStep(p, grad, buf | null, lr, momentum, weightDecay) -> [p', buf']
// torch.optim.SGD (dampening 0, no Nesterov): g = grad + wd * p; buf' = momentum * buf + g (buf' = g
// on the first step, when buf is null); p' = p - lr * buf'. One pass instead of six tensor ops.
Napi::Value SgdStep(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  const int64_t n = info[0].As<Napi::Float32Array>().ElementLength();
  const float* p = dataOf(info[0], n, "p");
  const float* grad = dataOf(info[1], n, "grad");
  const float* buf = info[2].IsTypedArray() ? dataOf(info[2], n, "buf") : nullptr;
  const float lr = info[3].As<Napi::Number>().FloatValue();
  const float mom = info[4].As<Napi::Number>().FloatValue();
  const float wd = info[5].As<Napi::Number>().FloatValue();
  auto pOut = newOutput(env, n);
  auto bOut = newOutput(env, n);
  float *po = pOut.Data(), *bo = bOut.Data();
  parallelRange(n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) {
      const float gi = grad[i] + p[i] * wd;
      const float d = buf ? buf[i] * mom + gi : gi;
      bo[i] = d;
      po[i] = p[i] - d * lr;
    }
  });
  auto result = Napi::Array::New(env, 2);
  result.Set(0u, pOut);
  result.Set(1u, bOut);
  return result;
}

// emaUpdate(k, q, m) -> k * m + q * (1 - m): the key encoder's momentum update, one pass.
Napi::Value EmaUpdate(const Napi::CallbackInfo& info) {
  const int64_t n = info[0].As<Napi::Float32Array>().ElementLength();
  const float* k = dataOf(info[0], n, "k");
  const float* q = dataOf(info[1], n, "q");
  const float m = info[2].As<Napi::Number>().FloatValue();
  const float r = 1.f - m;
  auto out = newOutput(info.Env(), n);
  float* o = out.Data();
  parallelRange(n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) o[i] = k[i] * m + q[i] * r;
  });
  return out;
}

// setNumThreads(n): OpenMP threads for this calling thread's kernels (oneDNN's and ours).
Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  const int n = info[0].As<Napi::Number>().Int32Value();
  if (n >= 1) omp_set_num_threads(n);
  return Napi::Number::New(info.Env(), omp_get_max_threads());
}

// retain(view) / release(view): a tensor's values taken up / given back (see OutputArena); both answer
// whether the view is arena memory. Any typed array may be passed.
Napi::Value Retain(const Napi::CallbackInfo& info) {
  if (!info[0].IsTypedArray()) return Napi::Boolean::New(info.Env(), false);
  return Napi::Boolean::New(info.Env(), arenaOf(info.Env()).retain(info[0].As<Napi::TypedArray>()));
}
Napi::Value Release(const Napi::CallbackInfo& info) {
  if (!info[0].IsTypedArray()) return Napi::Boolean::New(info.Env(), false);
  return Napi::Boolean::New(info.Env(), arenaOf(info.Env()).release(info[0].As<Napi::TypedArray>()));
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  auto v = dnnl::version();
  auto o = Napi::Object::New(info.Env());
  o.Set("onednn", std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch));
  o.Set("cpuRuntime", v->cpu_runtime == DNNL_RUNTIME_OMP ? "omp" : v->cpu_runtime == DNNL_RUNTIME_TBB ? "tbb" : "other");
  o.Set("cachedPrimitives", static_cast<double>(fwdCache.size() + fusedCache.size() + bwdDataCache.size() +
                                                bwdWeightsCache.size() + matmulCache.size()));
  o.Set("threads", omp_get_max_threads());
  o.Set("winogradPrimitives", static_cast<double>(std::count_if(fusedCache.begin(), fusedCache.end(), [](const auto& kv) {
          return kv.second && kv.second->winograd;
        })));
  auto plans = Napi::Object::New(info.Env());
  plans.Set("plans", static_cast<double>(planCache.size()));
  plans.Set("scratchBytes", static_cast<double>(planScratch.total()));
  int64_t winogradSteps = 0, chunkedSteps = 0;
  for (const auto& [k, plan] : planCache)
    for (const auto& st : plan->steps) {
      winogradSteps += st.winograd;
      chunkedSteps += st.chunk > 0;
    }
  plans.Set("winogradConvs", static_cast<double>(winogradSteps));
  plans.Set("chunkedConvs", static_cast<double>(chunkedSteps));
  o.Set("resnetPlans", plans);
  const OutputArena& arena = arenaOf(info.Env());
  auto a = Napi::Object::New(info.Env());
  a.Set("chunks", static_cast<double>(arena.chunkCount()));
  a.Set("reservedBytes", static_cast<double>(arena.reservedBytes()));
  a.Set("usedBytes", static_cast<double>(arena.usedBytes()));
  a.Set("peakUsedBytes", static_cast<double>(arena.peakUsedBytes()));
  a.Set("blocks", static_cast<double>(arena.blockCount()));
  o.Set("arena", a);
  return o;
}

// glibc serves each large block (every activation: 1-8 MB at width 16) with a fresh mmap and unmaps it on
// free, so every kernel's output is page-faulted and zeroed by the kernel anew; a training step is a few
// hundred of them. Kept in the heap instead (served from blocks freed earlier in the step), a width-16
// step took ~7% less CPU and on a loaded 2-core machine ~35% less time, for ~20 MB more peak RSS.
// Settings from the environment (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_) win.
void keepLargeBlocksInHeap() {
#ifdef __GLIBC__
  if (!std::getenv("MALLOC_MMAP_THRESHOLD_")) mallopt(M_MMAP_THRESHOLD, 256 << 20);
  if (!std::getenv("MALLOC_TRIM_THRESHOLD_")) mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  keepLargeBlocksInHeap();
  env.SetInstanceData(new OutputArena());
  exports.Set("conv2dForward", Napi::Function::New(env, Conv2dForward));
  exports.Set("conv2dFused", Napi::Function::New(env, Conv2dFused));
  exports.Set("conv2dBackwardData", Napi::Function::New(env, Conv2dBackwardData));
  exports.Set("conv2dBackwardWeights", Napi::Function::New(env, Conv2dBackwardWeights));
  exports.Set("matmul", Napi::Function::New(env, MatMulFn));
  exports.Set("binary", Napi::Function::New(env, Binary));
  exports.Set("unary", Napi::Function::New(env, Unary));
  exports.Set("reduce", Napi::Function::New(env, Reduce));
  exports.Set("batchNormTrain", Napi::Function::New(env, BatchNormTrain));
  exports.Set("batchNormTrainGrad", Napi::Function::New(env, BatchNormTrainGrad));
  exports.Set("sgdStep", Napi::Function::New(env, SgdStep));
  exports.Set("emaUpdate", Napi::Function::New(env, EmaUpdate));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads));
  exports.Set("retain", Napi::Function::New(env, Retain));
  exports.Set("release", Napi::Function::New(env, Release));
  exports.Set("resnetFeatures", Napi::Function::New(env, ResnetFeatures));
  exports.Set("info", Napi::Function::New(env, Info));
  return exports;
}

}  // namespace

NODE_API_MODULE(moco_native, Init)
