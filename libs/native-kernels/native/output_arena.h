// Kernel outputs as views into a few large ArrayBuffers (chunks) that live as long as the JS thread,
// handed out and taken back block by block: tfjs's backend calls `retain` when a view becomes a tensor's
// values and `release` when that tensor is disposed, so a block is reused at once, not when V8's GC
// gets round to it. A view of part of a block (a JS kernel's subarray of its input) holds the whole block.
//
// Why not one ArrayBuffer per output, as before: V8 counts every ArrayBuffer's bytes as external memory
// and starts a full mark-compact whenever they grow by a few tens of MB. A width-16 training step
// allocates over a gigabyte of outputs, so V8 ran a mark-compact about every 40 ms ("external memory
// pressure" in --trace-gc) and its concurrent marker took about a third of the process's CPU samples
// (perf, 2 cores), time the OpenMP threads lost. A chunk is counted once, when it is made.
//
// A plain best-fit free list with coalescing (blocks of 64-byte multiples, 64-byte aligned for oneDNN);
// a training step allocates a few hundred blocks, so nothing cleverer is needed.
#pragma once
#include <napi.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <utility>

class OutputArena {
 public:
  static constexpr size_t kAlign = 64;
  static constexpr size_t kChunkBytes = size_t{64} << 20;

  // A Float32Array of n elements over a free block (its refcount 0 until retained).
  Napi::Float32Array allocate(Napi::Env env, size_t n) {
    const size_t bytes = roundUp(n * sizeof(float));
    auto it = freeBySize_.lower_bound(bytes);
    if (it == freeBySize_.end()) {
      addChunk(env, std::max(bytes, kChunkBytes));
      it = freeBySize_.lower_bound(bytes);
    }
    Chunk* chunk = it->second.first;
    const size_t offset = it->second.second, size = it->first;
    freeBySize_.erase(it);
    chunk->free.erase(offset);
    if (size > bytes) insertFree(chunk, offset + bytes, size - bytes);
    chunk->used[offset] = Block{bytes, 0};
    usedBytes_ += bytes;
    peakUsedBytes_ = std::max(peakUsedBytes_, usedBytes_);
    return Napi::Float32Array::New(env, n, chunk->buffer.Value(), offset);
  }

  // Called when `a` becomes a tensor's values: true when `a` lies in a block, which is now held once more.
  bool retain(const Napi::TypedArray& a) {
    const Found f = blockOf(a);
    if (!f.block) return false;
    f.block->refs++;
    return true;
  }

  // Called when the tensor that held `a` is disposed; the block is free once nobody holds it.
  bool release(const Napi::TypedArray& a) {
    const Found f = blockOf(a);
    if (!f.block || f.block->refs <= 0) return false;
    if (--f.block->refs == 0) {
      const size_t size = f.block->size;
      f.chunk->used.erase(f.offset);
      usedBytes_ -= size;
      freeBlock(f.chunk, f.offset, size);
    }
    return true;
  }

  size_t chunkCount() const { return chunks_.size(); }
  size_t reservedBytes() const { return reservedBytes_; }
  size_t usedBytes() const { return usedBytes_; }
  size_t peakUsedBytes() const { return peakUsedBytes_; }
  size_t blockCount() const {
    size_t n = 0;
    for (auto& [base, c] : chunks_) n += c->used.size();
    return n;
  }

 private:
  struct Block {
    size_t size;
    int refs;
  };
  struct Chunk {
    Napi::Reference<Napi::ArrayBuffer> buffer;
    std::map<size_t, size_t> free;  // offset -> size
    std::map<size_t, Block> used;  // offset -> block
  };

  static size_t roundUp(size_t bytes) { return (std::max<size_t>(bytes, 1) + kAlign - 1) / kAlign * kAlign; }

  void addChunk(Napi::Env env, size_t bytes) {
    void* data = std::aligned_alloc(kAlign, bytes);
    if (!data) throw Napi::Error::New(env, "native kernels: out of memory for a " + std::to_string(bytes >> 20) + " MiB output chunk");
    // Freed with the ArrayBuffer, which the reference keeps alive until this JS thread's environment ends
    // (the reference is not deleted then: the environment is being torn down with everything in it).
    auto ab = Napi::ArrayBuffer::New(env, data, bytes, [](Napi::Env, void* d) { std::free(d); });
    auto chunk = std::make_unique<Chunk>();
    chunk->buffer = Napi::Persistent(ab);
    chunk->buffer.SuppressDestruct();
    insertFree(chunk.get(), 0, bytes);
    reservedBytes_ += bytes;
    chunks_[reinterpret_cast<uintptr_t>(data)] = std::move(chunk);
  }

  void insertFree(Chunk* c, size_t offset, size_t size) {
    c->free[offset] = size;
    freeBySize_.emplace(size, std::make_pair(c, offset));
  }

  void eraseFree(Chunk* c, size_t offset, size_t size) {
    c->free.erase(offset);
    auto [lo, hi] = freeBySize_.equal_range(size);
    for (auto it = lo; it != hi; ++it)
      if (it->second.first == c && it->second.second == offset) {
        freeBySize_.erase(it);
        return;
      }
  }

  // Returns [offset, offset + size) to the chunk, merged with free neighbours.
  void freeBlock(Chunk* c, size_t offset, size_t size) {
    auto next = c->free.find(offset + size);
    if (next != c->free.end()) {
      const size_t nextSize = next->second;
      eraseFree(c, offset + size, nextSize);
      size += nextSize;
    }
    auto prev = c->free.lower_bound(offset);
    if (prev != c->free.begin()) {
      --prev;
      if (prev->first + prev->second == offset) {
        const size_t prevOffset = prev->first, prevSize = prev->second;
        eraseFree(c, prevOffset, prevSize);
        offset = prevOffset;
        size += prevSize;
      }
    }
    insertFree(c, offset, size);
  }

  struct Found {
    Chunk* chunk = nullptr;
    size_t offset = 0;
    Block* block = nullptr;
  };

  // The block that `a` lies in; none when `a` is not a view of a chunk, or of no block in use.
  Found blockOf(const Napi::TypedArray& a) {
    if (chunks_.empty()) return {};
    auto it = chunks_.find(reinterpret_cast<uintptr_t>(a.ArrayBuffer().Data()));
    if (it == chunks_.end()) return {};
    Chunk* c = it->second.get();
    const size_t begin = a.ByteOffset(), end = begin + a.ByteLength();
    auto u = c->used.upper_bound(begin);
    if (u == c->used.begin()) return {};
    --u;
    if (end > u->first + u->second.size) return {};
    return {c, u->first, &u->second};
  }

  std::map<uintptr_t, std::unique_ptr<Chunk>> chunks_;            // by base address
  std::multimap<size_t, std::pair<Chunk*, size_t>> freeBySize_;  // best fit: smallest free block that fits
  size_t reservedBytes_ = 0, usedBytes_ = 0, peakUsedBytes_ = 0;
};
