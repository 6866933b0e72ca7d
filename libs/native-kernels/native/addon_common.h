// The addon's shared pieces: oneDNN's engine and this thread's stream, argument readers, output buffers,
// layouts, and inference weights packed once per filter. Part of the addon's single translation unit
// (moco_native.cc includes it, then the per-op kernels and the ResNet plan).
#pragma once
#include <napi.h>

#include <oneapi/dnnl/dnnl.hpp>

#include "output_arena.h"

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

namespace {

dnnl::engine& eng() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}
dnnl::stream& strm() {
  thread_local dnnl::stream s(eng());
  return s;
}

std::vector<int64_t> dimsOf(const Napi::Value& v, size_t n, const char* what) {
  if (!v.IsArray()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be an array");
  auto a = v.As<Napi::Array>();
  if (a.Length() != n) throw Napi::TypeError::New(v.Env(), std::string(what) + " has the wrong length");
  std::vector<int64_t> out(n);
  for (uint32_t i = 0; i < n; i++) out[i] = a.Get(i).As<Napi::Number>().Int64Value();
  return out;
}

float* dataOf(const Napi::Value& v, size_t expected, const char* what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a Float32Array");
  auto a = v.As<Napi::Float32Array>();
  if (a.ElementLength() != expected)
    throw Napi::RangeError::New(v.Env(), std::string(what) + ": expected " + std::to_string(expected) +
                                             " elements, got " + std::to_string(a.ElementLength()));
  return a.Data();
}

int64_t prod(const std::vector<int64_t>& d) {
  int64_t p = 1;
  for (auto x : d) p *= x;
  return p;
}

std::string key(std::initializer_list<const std::vector<int64_t>*> parts) {
  std::string k;
  for (auto* p : parts) {
    for (auto x : *p) k += std::to_string(x) + ",";
    k += ";";
  }
  return k;
}

// ---- output buffers ----
// Large outputs are views into this JS thread's OutputArena (output_arena.h: why), taken back when tfjs
// disposes the tensor; every kernel writes all of its output, so blocks are not cleared. Small ones are
// ordinary Float32Arrays on V8's heap.
constexpr size_t kArenaMinBytes = size_t{1} << 16;

OutputArena& arenaOf(Napi::Env env) { return *env.GetInstanceData<OutputArena>(); }

Napi::Float32Array newOutput(Napi::Env env, size_t n) {
  if (n * sizeof(float) < kArenaMinBytes) return Napi::Float32Array::New(env, n);
  return arenaOf(env).allocate(env, n);
}

// [N,H,W,C] -> oneDNN logical {N,C,H,W}, nhwc layout
memory::desc actMd(const std::vector<int64_t>& nhwc, tag t = tag::nhwc) {
  return memory::desc({nhwc[0], nhwc[3], nhwc[1], nhwc[2]}, dt::f32, t);
}
// tfjs filter [fh,fw,in,out] -> oneDNN {O,I,H,W}, hwio layout
memory::desc wMd(const std::vector<int64_t>& hwio, tag t = tag::hwio) {
  return memory::desc({hwio[3], hwio[2], hwio[0], hwio[1]}, dt::f32, t);
}

struct ConvGeom {
  std::vector<int64_t> x, w, y;  // NHWC, HWIO, NHWC
  memory::dims strides, dil, padL, padR;
};

template <typename F>
Napi::Value guarded(const Napi::CallbackInfo& info, F f) {
  try {
    return f();
  } catch (const dnnl::error& e) {
    throw Napi::Error::New(info.Env(), std::string("oneDNN: ") + e.what() + " (status " +
                                           std::to_string(static_cast<int>(e.status)) + ")");
  }
}

// Inference weights in the layout the primitive wants, reordered once per filter array and layout: a
// served encoder's (folded) filters are the same arrays call after call, and reordering all of them every
// call was a good part of a small batch's time (44 MB of filters at width 64). A filter can be wanted in
// two layouts (direct and Winograd convolutions, by batch size: winogradPays), so each array keeps a copy
// per layout. The copies hang off the array as a hidden property, so they live exactly as long as the
// array; tfjs tensors are immutable, so the array's values never change under them.
struct PackedWeights {
  std::vector<std::pair<memory::desc, memory>> layouts;
};
constexpr const char* kPackedProperty = "__mocoPackedWeights";

memory packedWeights(Napi::Env env, Napi::Object filter, const memory::desc& user, const memory::desc& want, float* data) {
  if (user == want) return memory(user, eng(), data);
  Napi::Value held = filter.Get(kPackedProperty);
  PackedWeights* p = nullptr;
  if (held.IsExternal()) {
    p = held.As<Napi::External<PackedWeights>>().Data();
    for (auto& [desc, mem] : p->layouts)
      if (desc == want) return mem;
  } else {
    p = new PackedWeights();
    auto ext = Napi::External<PackedWeights>::New(env, p, [](Napi::Env e, PackedWeights* q) {
      int64_t bytes = 0;
      for (auto& [desc, mem] : q->layouts) bytes += static_cast<int64_t>(desc.get_size());
      Napi::MemoryManagement::AdjustExternalMemory(e, -bytes);
      delete q;
    });
    // Not enumerable, writable or configurable: invisible to Object.keys and JSON, set once.
    filter.DefineProperty(Napi::PropertyDescriptor::Value(kPackedProperty, ext, napi_default));
  }
  memory packed(want, eng());
  memory src(user, eng(), data);
  dnnl::reorder(src, packed).execute(strm(), src, packed);
  strm().wait();
  Napi::MemoryManagement::AdjustExternalMemory(env, static_cast<int64_t>(want.get_size()));
  p->layouts.emplace_back(want, packed);
  return packed;
}

// Winograd F(4x4, 3x3) for an inference convolution: 3x3, stride 1, no dilation, at least 64 channels in
// and out, and at least 1e8 multiply-adds (below that its transforms cost more than they save). Measured
// on 2 AVX-512 cores (oneDNN 2.6): per shape mostly 1.1-2.8x the direct convolution at 64 channels and
// more, 0.4-1.1x at 32 (Intel Xeon, with reorders to and from its blocked layout). In whole ResNet-18
// passes run as resnet_plan.h's plans (AMD EPYC, ms a call, median of 10-60, one run of each rule):
// width 64 batch 32 62 (this rule) against 104 (direct only); width 64 batch 1 3.9 against 6.3 (Winograd
// from 128 output pixels, the rule before); width 16 batch 128 23 against 29. The embedding differs from
// the direct one's by about 1e-6 (relative). MOCO_NATIVE_WINOGRAD=0 turns it off.
bool winogradPays(const ConvGeom& g) {
  static const bool enabled = [] {
    const char* v = std::getenv("MOCO_NATIVE_WINOGRAD");
    return !(v && std::string(v) == "0");
  }();
  const int64_t cin = g.w[2], cout = g.w[3];
  const double macs = 9.0 * static_cast<double>(cin * cout) * static_cast<double>(g.y[0] * g.y[1] * g.y[2]);
  return enabled && g.w[0] == 3 && g.w[1] == 3 && g.strides[0] == 1 && g.strides[1] == 1 && g.dil[0] == 0 && g.dil[1] == 0 &&
         cin >= 64 && cout >= 64 && macs >= 1e8;
}
}  // namespace
