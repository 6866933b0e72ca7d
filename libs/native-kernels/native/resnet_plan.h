// A ResNet's eval-mode backbone (convolutions with BN folded in, residuals, ReLUs, the stem's max pool)
// and its global average pool, run as one native call: the serving path's equivalent of a frozen graph.
//
// Why: run layer by layer through tfjs, a width-16 embedding at batch 8 spends a sixth of its time in
// tfjs's dispatch and in moving each activation in and out of NHWC; at batch 1 most of the call is fixed
// cost. Here the convolutions pass activations to each other in the layout oneDNN picks for them (its
// blocked nChw16c on AVX-512, Winograd's included), a shortcut is summed into the buffer that holds it,
// and the activations live in a few per-thread scratch buffers reused from layer to layer.
#pragma once
#include "addon_common.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

// The plan's `ops` argument: kPlanOpWidth numbers per op, in order; op i writes value i + 1, value 0 is
// the input. [kind, src, residual (-1 none), stride, pad, relu]. Convolutions take their filter and bias
// from `weights` in op order (filter, bias, filter, bias, ...).
constexpr int kPlanOpWidth = 6;
enum PlanOpKind { kPlanConv = 0, kPlanMaxPool = 1 };  // max pool: 3x3, stride 2, pad 1 (the ImageNet stem)

struct PlanValue {
  std::vector<int64_t> nhwc;
  memory::desc md;  // its layout, chosen by the primitive that writes it (the input's: NHWC)
  int slot = -1;    // scratch buffer it lives in (none for the input)
};

struct PlanStep {
  int kind = kPlanConv;
  int src = 0, residual = -1, out = 0;
  int conv = -1;  // index of the convolution (its filter is weights[2 * conv])
  bool winograd = false;
  // smallBatchWinograd: the batch run `chunk` images at a time by chunkPd's primitive (prim), the rest by
  // tail's. 0: the whole batch at once.
  int64_t chunk = 0;
  dnnl::convolution_forward::primitive_desc chunkPd;
  dnnl::primitive tail;
  memory::desc tailSrc, tailDst, tailWWant;
  dnnl::primitive prim;
  memory::desc wUser, wWant, bias;
  // Source in another layout than the primitive's: reordered into a scratch buffer first.
  bool reorderSrc = false;
  memory::desc srcWant;
  int srcSlot = -1;
  dnnl::reorder srcReorder;
  // The residual is summed into dst (oneDNN's sum post-op): in place when dst is the residual's own buffer,
  // otherwise copied (reordered) into dst first.
  bool copyResidual = false;
  dnnl::reorder residualCopy;
};

struct ResnetPlan {
  std::vector<PlanValue> values;
  std::vector<PlanStep> steps;
  std::vector<size_t> slotBytes;
  // The last value in NHWC for the average: reordered into finalSlot when it is in another layout.
  int finalSlot = -1;
  dnnl::reorder finalReorder;
};

// Scratch buffers of this thread, shared by its plans (a thread runs one plan at a time), grown on demand
// and kept for the thread's life, as the output arena's chunks are.
struct PlanScratch {
  std::vector<std::unique_ptr<float, decltype(&std::free)>> buffers;
  std::vector<size_t> bytes;
  float* get(size_t slot, size_t want) {
    while (buffers.size() <= slot) {
      buffers.emplace_back(nullptr, &std::free);
      bytes.push_back(0);
    }
    if (bytes[slot] < want) {
      const size_t rounded = (want + 63) / 64 * 64;
      buffers[slot].reset(static_cast<float*>(std::aligned_alloc(64, rounded)));
      if (!buffers[slot]) throw std::bad_alloc();
      bytes[slot] = rounded;
    }
    return buffers[slot].get();
  }
  size_t total() const {
    size_t t = 0;
    for (auto b : bytes) t += b;
    return t;
  }
};

thread_local std::unordered_map<std::string, std::unique_ptr<ResnetPlan>> planCache;
thread_local PlanScratch planScratch;

// Scratch buffers handed out while a plan is compiled: a value's buffer is free again after its last
// reader; a new value takes the smallest free buffer that holds it (else the largest, grown).
class SlotAllocator {
 public:
  explicit SlotAllocator(std::vector<size_t>& sizes) : sizes_(sizes) {}
  int take(size_t bytes) {
    int best = -1;
    for (int s : free_) {
      const bool fits = sizes_[s] >= bytes, bestFits = best >= 0 && sizes_[best] >= bytes;
      const bool better = fits ? !bestFits || sizes_[s] < sizes_[best] : !bestFits && sizes_[s] > sizes_[best];
      if (best < 0 || better) best = s;
    }
    if (best < 0) {
      best = static_cast<int>(sizes_.size());
      sizes_.push_back(0);
    } else {
      free_.erase(std::find(free_.begin(), free_.end(), best));
    }
    sizes_[best] = std::max(sizes_[best], bytes);
    return best;
  }
  void give(int slot) {
    if (slot >= 0) free_.push_back(slot);
  }

 private:
  std::vector<size_t>& sizes_;
  std::vector<int> free_;
};

dnnl::reorder reorderOf(const memory::desc& from, const memory::desc& to) {
  return dnnl::reorder(dnnl::reorder::primitive_desc(eng(), from, eng(), to));
}

// oneDNN's Winograd F(2x2, 3x3) for a small batch of a wide convolution: 4/9 the transformed-filter bytes
// of F(4x4, 3x3) and no 4x4 tiles mostly of padding on a 4x4 or 8x8 image, but oneDNN takes it only for a
// batch of at most its thread count, so the batch runs in chunks of that many images (nChw16c: each
// chunk is a contiguous run). Width-64 embedding at batch 8, 2 threads: the 256- and 512-channel
// convolutions 3.9 + 7.3 ms a call as F(4x4) over the whole batch, 2.8-3.0 + 5.4-6.3 ms in chunks; the
// whole call 25.5 -> 21.9 ms (batch 4: 15.0 -> 13.4; batch 16: 46.7 -> 44.6; batch 32: 76.6 -> 92.4,
// hence the 16-image line; medians of 20 calls, one run each, AMD EPYC). On one thread (chunks of one
// image) it gained nothing (batch 8: 40.9 against 41.0 ms; batch 16: 77.1 against 72.3), so it needs two
// threads or more. False where it does not apply.
bool smallBatchWinograd(PlanStep& st, const ConvGeom& g, const dnnl::primitive_attr& attr) {
  const int64_t n = g.x[0], c = g.w[2], o = g.w[3];
  const int64_t threads = omp_get_max_threads();
  if (threads < 2 || c < 256 || o < 256 || n > 16 || g.padL[0] != 1 || g.padL[1] != 1) return false;
  const int64_t chunk = std::min<int64_t>(n, threads), rest = n % chunk;
  auto f2x3 = [&](int64_t images) -> dnnl::convolution_forward::primitive_desc {
    const memory::desc src({images, c, g.x[1], g.x[2]}, dt::f32, tag::nChw16c), dst({images, o, g.y[1], g.y[2]}, dt::f32, tag::nChw16c);
    auto d = dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_winograd, src, wMd(g.w, tag::any),
                                             memory::desc({o}, dt::f32, tag::x), dst, g.strides, g.dil, g.padL, g.padR);
    auto pd = dnnl::convolution_forward::primitive_desc(d, attr, eng());
    if (std::string(pd.impl_info_str()).find("wino_2x3") == std::string::npos) throw dnnl::error(dnnl_unimplemented, "not F(2x2, 3x3)");
    return pd;
  };
  try {
    auto main = f2x3(chunk);
    if (rest) {
      auto tail = f2x3(rest);
      st.tail = dnnl::convolution_forward(tail);
      st.tailSrc = tail.src_desc();
      st.tailDst = tail.dst_desc();
      st.tailWWant = tail.weights_desc();
    }
    st.chunkPd = main;
    st.chunk = chunk;
    return true;
  } catch (const dnnl::error&) {
    return false;  // not on this CPU or for this shape: oneDNN's choice stands
  }
}

// `wanted`: per value, a layout to ask its maker for first (from a compile before: what its readers
// reordered it to), or none.
std::unique_ptr<ResnetPlan> compilePlan(const std::vector<int64_t>& xShape, const std::vector<int64_t>& ops,
                                        const std::vector<std::vector<int64_t>>& filterShapes,
                                        const std::vector<memory::desc>& wanted = {}) {
  auto plan = std::make_unique<ResnetPlan>();
  const size_t count = ops.size() / kPlanOpWidth;
  plan->values.resize(count + 1);
  plan->values[0].nhwc = xShape;
  plan->values[0].md = actMd(xShape);
  // The last op reading each value (count: the final average).
  std::vector<size_t> lastUse(count + 1, 0);
  for (size_t i = 0; i < count; i++) {
    const int64_t* op = &ops[i * kPlanOpWidth];
    const std::string at = "op " + std::to_string(i);
    if (op[1] < 0) throw std::range_error(at + " has no source");
    if (op[0] == kPlanMaxPool && op[2] >= 0) throw std::range_error(at + ": a max pool takes no residual");
    if (op[0] == kPlanConv && (op[3] < 1 || op[4] < 0)) throw std::range_error(at + ": stride must be 1 or more and pad 0 or more");
    for (int64_t v : {op[1], op[2]})
      if (v >= 0) {
        if (v > static_cast<int64_t>(i)) throw std::range_error(at + " reads a value not yet made");
        lastUse[v] = i;
      }
  }
  lastUse[count] = count;
  SlotAllocator slots(plan->slotBytes);
  int conv = 0;
  for (size_t i = 0; i < count; i++) {
    const int64_t* op = &ops[i * kPlanOpWidth];
    PlanStep st;
    st.kind = static_cast<int>(op[0]);
    st.src = static_cast<int>(op[1]);
    st.residual = static_cast<int>(op[2]);
    st.out = static_cast<int>(i + 1);
    const int64_t stride = op[3], pad = op[4];
    const bool relu = op[5] != 0;
    const PlanValue& in = plan->values[st.src];
    PlanValue& out = plan->values[st.out];
    const int64_t n = in.nhwc[0], h = in.nhwc[1], w = in.nhwc[2], c = in.nhwc[3];
    // Tries layouts from the most to the least wanted: src as it is, dst as the residual is (so the sum
    // can run in place) or as its readers want it; oneDNN's own choice of either where that has no
    // implementation, or only oneDNN's slow reference one (a 3-channel NHWC stem asked for nChw16c out).
    auto firstThatBuilds = [&](auto make, const memory::desc& dstWanted) {
      const memory::desc anyDst(out.md.dims(), dt::f32, tag::any), anySrc(in.md.dims(), dt::f32, tag::any);
      const memory::desc tries[][2] = {{in.md, dstWanted}, {anySrc, dstWanted}, {in.md, anyDst}, {anySrc, anyDst}};
      for (size_t t = 0; t < 3; t++) {
        try {
          auto pd = make(tries[t][0], tries[t][1]);
          if (std::string(pd.impl_info_str()).rfind("ref", 0) != 0) return pd;
        } catch (const dnnl::error&) {
        }
      }
      return make(tries[3][0], tries[3][1]);
    };
    const memory::desc dstWanted = st.out < static_cast<int>(wanted.size()) && wanted[st.out] != memory::desc()
                                       ? wanted[st.out]
                                       : memory::desc(out.md.dims(), dt::f32, tag::any);
    memory::desc srcGot, dstGot;
    if (st.kind == kPlanConv) {
      if (static_cast<size_t>(conv) >= filterShapes.size()) throw std::range_error("more convolutions than filters");
      const auto& fs = filterShapes[conv];
      if (fs[2] != c) throw std::range_error("convolution " + std::to_string(conv) + ": filter takes " + std::to_string(fs[2]) +
                                             " channels, its input has " + std::to_string(c));
      st.conv = conv++;
      if (h + 2 * pad < fs[0] || w + 2 * pad < fs[1])
        throw std::range_error("convolution " + std::to_string(st.conv) + ": its filter is larger than its padded input");
      out.nhwc = {n, (h + 2 * pad - fs[0]) / stride + 1, (w + 2 * pad - fs[1]) / stride + 1, fs[3]};
      out.md = actMd(out.nhwc);
      if (st.residual >= 0 && plan->values[st.residual].nhwc != out.nhwc)
        throw std::range_error("convolution " + std::to_string(st.conv) + ": its residual's shape is not its output's");
      ConvGeom g{in.nhwc, fs, out.nhwc, {stride, stride}, {0, 0}, {pad, pad}, {pad, pad}};
      dnnl::primitive_attr attr;
      dnnl::post_ops post;
      if (st.residual >= 0) post.append_sum(1.f);
      if (relu) post.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
      attr.set_post_ops(post);
      st.bias = memory::desc({fs[3]}, dt::f32, tag::x);
      st.wUser = wMd(fs);
      auto build = [&](dnnl::algorithm algo) {
        return firstThatBuilds(
            [&](const memory::desc& s, const memory::desc& d) {
              auto desc = dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, algo, s, wMd(fs, tag::any), st.bias, d,
                                                          g.strides, g.dil, g.padL, g.padR);
              return dnnl::convolution_forward::primitive_desc(desc, attr, eng());
            },
            st.residual >= 0 ? plan->values[st.residual].md : dstWanted);
      };
      dnnl::convolution_forward::primitive_desc pd;
      bool built = false;
      if (winogradPays(g) && smallBatchWinograd(st, g, attr)) {
        pd = st.chunkPd;
        built = st.winograd = true;
      }
      if (!built && winogradPays(g)) {
        try {
          pd = build(dnnl::algorithm::convolution_winograd);
          built = st.winograd = true;
        } catch (const dnnl::error&) {
          // No Winograd implementation for this CPU (oneDNN 2.6 has f32 Winograd for AVX-512 only).
        }
      }
      if (!built) pd = build(dnnl::algorithm::convolution_direct);
      st.prim = dnnl::convolution_forward(pd);
      st.wWant = pd.weights_desc();
      srcGot = pd.src_desc();
      dstGot = pd.dst_desc();
      if (st.chunk) {  // the whole batch in the chunks' layout
        srcGot = memory::desc(in.md.dims(), dt::f32, tag::nChw16c);
        dstGot = memory::desc(out.md.dims(), dt::f32, tag::nChw16c);
      }
    } else if (st.kind == kPlanMaxPool) {
      out.nhwc = {n, (h + 2 - 3) / 2 + 1, (w + 2 - 3) / 2 + 1, c};
      out.md = actMd(out.nhwc);
      auto pd = firstThatBuilds(
          [&](const memory::desc& s, const memory::desc& d) {
            auto desc = dnnl::pooling_forward::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::pooling_max, s, d,
                                                    {2, 2}, {3, 3}, {1, 1}, {1, 1});
            return dnnl::pooling_forward::primitive_desc(desc, eng());
          },
          dstWanted);
      st.prim = dnnl::pooling_forward(pd);
      srcGot = pd.src_desc();
      dstGot = pd.dst_desc();
    } else {
      throw std::range_error("unknown plan op kind " + std::to_string(st.kind));
    }
    out.md = dstGot;
    if (srcGot != in.md) {
      st.reorderSrc = true;
      st.srcWant = srcGot;
      st.srcReorder = reorderOf(in.md, srcGot);
      st.srcSlot = slots.take(srcGot.get_size());
    }
    // Never in place over the input (the caller's array) or over a source still to be read.
    const bool inPlace = st.residual > 0 && st.residual != st.src && lastUse[st.residual] == i &&
                         plan->values[st.residual].md == out.md;
    if (inPlace) {
      out.slot = plan->values[st.residual].slot;
    } else {
      out.slot = slots.take(out.md.get_size());
      if (st.residual >= 0) {
        st.copyResidual = true;
        st.residualCopy = reorderOf(plan->values[st.residual].md, out.md);
      }
    }
    slots.give(st.srcSlot);
    if (st.src > 0 && lastUse[st.src] == i) slots.give(plan->values[st.src].slot);
    if (!inPlace && st.residual > 0 && st.residual != st.src && lastUse[st.residual] == i) slots.give(plan->values[st.residual].slot);
    plan->steps.push_back(std::move(st));
  }
  if (static_cast<size_t>(conv) != filterShapes.size()) throw std::range_error("more filters than convolutions");
  const PlanValue& last = plan->values[count];
  const memory::desc nhwc = actMd(last.nhwc);
  if (last.md != nhwc) {
    plan->finalSlot = slots.take(nhwc.get_size());
    plan->finalReorder = reorderOf(last.md, nhwc);
  }
  return plan;
}

// What each value was reordered to for its readers in `plan` (a source in another layout than its
// convolution takes, a residual in another layout than the sum's dst): compiled again asking the makers
// for those, the reorders mostly go (a width-64 stem's brgconv writes NHWC unless asked, and the
// Winograd convolutions after it read nChw16c: two reorders of its output per call).
std::vector<memory::desc> layoutsReadersWanted(const ResnetPlan& plan) {
  std::vector<memory::desc> wanted(plan.values.size());
  for (const PlanStep& st : plan.steps) {
    if (st.reorderSrc && st.src > 0) wanted[st.src] = st.srcWant;
    if (st.copyResidual && st.residual > 0 && wanted[st.residual] == memory::desc()) wanted[st.residual] = plan.values[st.out].md;
  }
  return wanted;
}

// resnetFeatures(x, xShape [N,H,W,C], ops (kPlanOpWidth numbers per op), weights [filter, bias, ...],
// filterShapes [[kh,kw,in,out], ...]) -> the last value averaged over its pixels, [N, C].
Napi::Value ResnetFeatures(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const auto xShape = dimsOf(info[1], 4, "xShape");
    float* x = dataOf(info[0], prod(xShape), "x");
    if (!info[2].IsArray() || !info[3].IsArray() || !info[4].IsArray())
      throw Napi::TypeError::New(env, "resnetFeatures: ops, weights and filterShapes must be arrays");
    auto opsArr = info[2].As<Napi::Array>();
    if (opsArr.Length() == 0 || opsArr.Length() % kPlanOpWidth != 0)
      throw Napi::RangeError::New(env, "resnetFeatures: ops must hold " + std::to_string(kPlanOpWidth) + " numbers per op");
    std::vector<int64_t> ops(opsArr.Length());
    for (uint32_t i = 0; i < opsArr.Length(); i++) ops[i] = opsArr.Get(i).As<Napi::Number>().Int64Value();
    auto shapesArr = info[4].As<Napi::Array>();
    std::vector<std::vector<int64_t>> filterShapes(shapesArr.Length());
    for (uint32_t i = 0; i < shapesArr.Length(); i++) filterShapes[i] = dimsOf(shapesArr.Get(i), 4, "filterShape");
    auto weights = info[3].As<Napi::Array>();
    if (weights.Length() != 2 * filterShapes.size())
      throw Napi::RangeError::New(env, "resnetFeatures: expected a filter and a bias per convolution");

    std::vector<int64_t> shapes;
    for (auto& s : filterShapes) shapes.insert(shapes.end(), s.begin(), s.end());
    const std::string k = key({&xShape, &ops, &shapes});
    auto found = planCache.find(k);
    if (found == planCache.end()) {
      try {
        auto plan = compilePlan(xShape, ops, filterShapes);
        const auto wanted = layoutsReadersWanted(*plan);
        if (std::any_of(wanted.begin(), wanted.end(), [](const memory::desc& d) { return d != memory::desc(); }))
          plan = compilePlan(xShape, ops, filterShapes, wanted);
        found = planCache.emplace(k, std::move(plan)).first;
      } catch (const std::range_error& e) {
        throw Napi::RangeError::New(env, std::string("resnetFeatures: ") + e.what());
      }
    }
    ResnetPlan* plan = found->second.get();

    std::vector<float*> slot(plan->slotBytes.size());
    for (size_t s = 0; s < slot.size(); s++) slot[s] = planScratch.get(s, plan->slotBytes[s]);
    auto mem = [&](int v) {
      const PlanValue& pv = plan->values[v];
      return memory(pv.md, eng(), v == 0 ? x : slot[pv.slot]);
    };
    for (PlanStep& st : plan->steps) {
      memory src = mem(st.src), dst = mem(st.out);
      if (st.reorderSrc) {
        memory moved(st.srcWant, eng(), slot[st.srcSlot]);
        st.srcReorder.execute(strm(), src, moved);
        src = moved;
      }
      if (st.copyResidual) {
        memory r = mem(st.residual);
        st.residualCopy.execute(strm(), r, dst);
      }
      std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}};
      Napi::Value filter;
      float* f = nullptr;
      if (st.kind == kPlanConv) {
        const int64_t channels = plan->values[st.out].nhwc[3];
        filter = weights.Get(2 * st.conv);
        f = dataOf(filter, static_cast<size_t>(st.wUser.get_size() / sizeof(float)), "filter");
        float* b = dataOf(weights.Get(2 * st.conv + 1), static_cast<size_t>(channels), "bias");
        args.insert({DNNL_ARG_WEIGHTS, packedWeights(env, filter.As<Napi::Object>(), st.wUser, st.wWant, f)});
        args.insert({DNNL_ARG_BIAS, memory(st.bias, eng(), b)});
      }
      if (!st.chunk) {
        st.prim.execute(strm(), args);
        continue;
      }
      // In chunks (smallBatchWinograd): each a contiguous run of images in nChw16c.
      const int64_t images = plan->values[st.out].nhwc[0], full = images / st.chunk;
      const memory::desc chunkSrc = st.chunkPd.src_desc(), chunkDst = st.chunkPd.dst_desc();
      const size_t srcBytes = chunkSrc.get_size(), dstBytes = chunkDst.get_size();
      char* s0 = static_cast<char*>(src.get_data_handle());
      char* d0 = static_cast<char*>(dst.get_data_handle());
      for (int64_t i = 0; i < full; i++) {
        args[DNNL_ARG_SRC] = memory(chunkSrc, eng(), s0 + i * srcBytes);
        args[DNNL_ARG_DST] = memory(chunkDst, eng(), d0 + i * dstBytes);
        st.prim.execute(strm(), args);
      }
      if (images % st.chunk) {
        args[DNNL_ARG_WEIGHTS] = packedWeights(env, filter.As<Napi::Object>(), st.wUser, st.tailWWant, f);
        args[DNNL_ARG_SRC] = memory(st.tailSrc, eng(), s0 + full * srcBytes);
        args[DNNL_ARG_DST] = memory(st.tailDst, eng(), d0 + full * dstBytes);
        st.tail.execute(strm(), args);
      }
    }
    const PlanValue& last = plan->values.back();
    const float* y = slot[last.slot];
    if (plan->finalSlot >= 0) {
      memory plain(actMd(last.nhwc), eng(), slot[plan->finalSlot]);
      memory lastMem = mem(static_cast<int>(plan->values.size() - 1));
      plan->finalReorder.execute(strm(), lastMem, plain);
      y = slot[plan->finalSlot];
    }
    strm().wait();
    const int64_t n = last.nhwc[0], pixels = last.nhwc[1] * last.nhwc[2], c = last.nhwc[3];
    auto out = newOutput(env, n * c);
    float* o = out.Data();
    for (int64_t i = 0; i < n; i++) {
      float* row = o + i * c;
      std::fill(row, row + c, 0.f);
      for (int64_t p = 0; p < pixels; p++) {
        const float* px = y + (i * pixels + p) * c;
        for (int64_t j = 0; j < c; j++) row[j] += px[j];
      }
      for (int64_t j = 0; j < c; j++) row[j] /= static_cast<float>(pixels);
    }
    return out;
  });
}

}  // namespace
