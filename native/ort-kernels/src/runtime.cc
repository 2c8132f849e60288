#include "runtime.h"

#include <dlfcn.h>

#include <mutex>

#include "custom-ops.h"

namespace {

Runtime state;
std::once_flag loadOnce;

void openRuntime(const std::string& path) {
  void* library = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    state.error = std::string("cannot open ") + path + ": " + dlerror();
    return;
  }
  auto getBase = reinterpret_cast<const ort::ApiBase* (*)()>(dlsym(library, "OrtGetApiBase"));
  if (getBase == nullptr) {
    state.error = path + " has no OrtGetApiBase";
    return;
  }
  const ort::ApiBase* base = getBase();
  const void* table = base->GetApi(13);
  if (table == nullptr) {
    state.error = path + " does not offer C API version 13";
    return;
  }
  state.api = new ort::Api(table);
  state.version = base->GetVersionString();
  const ort::Api& api = *state.api;
  std::string e = takeError(api.call<ort::Status*>(ort::kCreateEnv, 3 /* error */, "moodlsr-kernels", &state.env));
  if (e.empty()) e = takeError(api.call<ort::Status*>(ort::kCreateCpuMemoryInfo, 1 /* arena */, 0 /* default */, &state.cpu));
  if (e.empty()) e = takeError(api.call<ort::Status*>(ort::kCreateCustomOpDomain, "com.moodlsr", &state.domain));
  if (e.empty()) e = addCustomOps(api, state.domain);
  if (!e.empty()) {
    state.error = e;
    state.api = nullptr;
  }
}

}  // namespace

const Runtime& loadRuntime(const std::string& libraryPath) {
  std::call_once(loadOnce, openRuntime, libraryPath);
  return state;
}

const Runtime& runtime() { return state; }

std::string takeError(ort::Status* status) {
  if (status == nullptr) return "";
  std::string message = state.api->call<const char*>(ort::kGetErrorMessage, static_cast<const ort::Status*>(status));
  state.api->call<void>(ort::kReleaseStatus, status);
  return message.empty() ? "unknown ONNX Runtime error" : message;
}

std::vector<int64_t> dimsOf(const ort::Value* value) {
  ort::TensorTypeAndShapeInfo* info = nullptr;
  if (!takeError(state.api->call<ort::Status*>(ort::kGetTensorTypeAndShape, value, &info)).empty()) return {};
  size_t rank = 0;
  state.api->call<ort::Status*>(ort::kGetDimensionsCount, static_cast<const ort::TensorTypeAndShapeInfo*>(info), &rank);
  std::vector<int64_t> dims(rank);
  state.api->call<ort::Status*>(ort::kGetDimensions, static_cast<const ort::TensorTypeAndShapeInfo*>(info), dims.data(), rank);
  state.api->call<void>(ort::kReleaseTensorTypeAndShapeInfo, info);
  return dims;
}

float* tensorData(const ort::Value* value) {
  void* data = nullptr;
  takeError(state.api->call<ort::Status*>(ort::kGetTensorMutableData, const_cast<ort::Value*>(value), &data));
  return static_cast<float*>(data);
}

int64_t elementsOf(const ort::Value* value) {
  int64_t count = 1;
  for (int64_t d : dimsOf(value)) count *= d;
  return count;
}
