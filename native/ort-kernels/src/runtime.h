// The ONNX Runtime this addon drives: onnxruntime-node's own libonnxruntime, opened once per process,
// its C API table, one environment, CPU memory info and the com.moodlsr custom-operator domain.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "ort-slots.h"

struct Runtime {
  const ort::Api* api = nullptr;
  ort::Env* env = nullptr;
  ort::MemoryInfo* cpu = nullptr;
  ort::CustomOpDomain* domain = nullptr;
  std::string version;
  /** Why loading failed (api is then null). */
  std::string error;
};

/** The process's runtime, loaded from `libraryPath` on the first call (later calls return the same one). */
const Runtime& loadRuntime(const std::string& libraryPath);

/** The loaded runtime (api null before loadRuntime succeeded). */
const Runtime& runtime();

/** An ONNX Runtime status as its message (empty for success), releasing the status. */
std::string takeError(ort::Status* status);

std::vector<int64_t> dimsOf(const ort::Value* value);
int64_t elementsOf(const ort::Value* value);
float* tensorData(const ort::Value* value);
