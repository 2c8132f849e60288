// A small ONNX Runtime binding for the training sessions: the same libonnxruntime that onnxruntime-node
// ships and loads, driven through its C API, with this project's custom operators registered
// (onnxruntime-node cannot register any). Inputs are passed to the runtime without copying.
//   load(libraryPath) → { version, vectorised }
//   createSession(model: Uint8Array, threads, profilePrefix?, spin?) → session
//   endProfiling(session) → the profile's file name (sessions created with a profilePrefix)
//   run(session, inputNames, inputs: {type, data, dims}[], outputNames) → {type, data, dims}[]
#include <node_api.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "conv-weight-grad.h"
#include "elu-exp.h"
#include "runtime.h"

namespace {

// ---- N-API helpers --------------------------------------------------------------------------------

#define CHECK_NAPI(env, call)                                              \
  do {                                                                     \
    if ((call) != napi_ok) {                                               \
      napi_throw_error(env, nullptr, "ort-kernels: N-API call failed: " #call); \
      return nullptr;                                                      \
    }                                                                      \
  } while (0)

napi_value fail(napi_env env, const std::string& message) {
  napi_throw_error(env, nullptr, ("ort-kernels: " + message).c_str());
  return nullptr;
}

bool stringOf(napi_env env, napi_value v, std::string& out) {
  size_t length = 0;
  if (napi_get_value_string_utf8(env, v, nullptr, 0, &length) != napi_ok) return false;
  out.resize(length);
  return napi_get_value_string_utf8(env, v, out.data(), length + 1, &length) == napi_ok;
}

bool stringsOf(napi_env env, napi_value array, std::vector<std::string>& out) {
  uint32_t n = 0;
  if (napi_get_array_length(env, array, &n) != napi_ok) return false;
  out.resize(n);
  for (uint32_t i = 0; i < n; i++) {
    napi_value item;
    if (napi_get_element(env, array, i, &item) != napi_ok || !stringOf(env, item, out[i])) return false;
  }
  return true;
}

struct SessionHandle {
  ort::Session* session = nullptr;
};

void finalizeSession(napi_env, void* data, void*) {
  auto* handle = static_cast<SessionHandle*>(data);
  if (handle->session != nullptr) runtime().api->call<void>(ort::kReleaseSession, handle->session);
  delete handle;
}

int elementTypeOf(const std::string& name) {
  if (name == "float32") return ort::kFloat;
  if (name == "int64") return ort::kInt64;
  if (name == "int32") return ort::kInt32;
  if (name == "uint8") return ort::kUint8;
  if (name == "int8") return ort::kInt8;
  if (name == "bool") return ort::kBool;
  if (name == "float64") return ort::kDouble;
  return 0;
}

struct JsArrayKind {
  const char* name;
  napi_typedarray_type array;
  size_t bytes;
};

bool jsKindOf(int type, JsArrayKind& kind) {
  switch (type) {
    case ort::kFloat: kind = {"float32", napi_float32_array, 4}; return true;
    case ort::kInt64: kind = {"int64", napi_bigint64_array, 8}; return true;
    case ort::kInt32: kind = {"int32", napi_int32_array, 4}; return true;
    case ort::kUint8: kind = {"uint8", napi_uint8_array, 1}; return true;
    case ort::kInt8: kind = {"int8", napi_int8_array, 1}; return true;
    case ort::kBool: kind = {"bool", napi_uint8_array, 1}; return true;
    case ort::kDouble: kind = {"float64", napi_float64_array, 8}; return true;
    default: return false;
  }
}

// ---- exported functions ---------------------------------------------------------------------------

napi_value Load(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  std::string path;
  if (argc < 1 || !stringOf(env, argv[0], path)) return fail(env, "load(libraryPath) needs a path");
  const Runtime& loaded = loadRuntime(path);
  if (loaded.api == nullptr) return fail(env, loaded.error);
  napi_value result, version, vectorised;
  CHECK_NAPI(env, napi_create_object(env, &result));
  CHECK_NAPI(env, napi_create_string_utf8(env, loaded.version.c_str(), NAPI_AUTO_LENGTH, &version));
  CHECK_NAPI(env, napi_get_boolean(env, convWeightGradVectorised(), &vectorised));
  CHECK_NAPI(env, napi_set_named_property(env, result, "version", version));
  CHECK_NAPI(env, napi_set_named_property(env, result, "vectorised", vectorised));
  return result;
}

napi_value CreateSession(napi_env env, napi_callback_info info) {
  if (runtime().api == nullptr) return fail(env, "load() first");
  size_t argc = 4;
  napi_value argv[4];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  bool spin = false;
  if (argc >= 4) {
    napi_value flag;
    CHECK_NAPI(env, napi_coerce_to_bool(env, argv[3], &flag));
    CHECK_NAPI(env, napi_get_value_bool(env, flag, &spin));
  }
  std::string profilePrefix;
  if (argc >= 3) {
    napi_valuetype kind;
    CHECK_NAPI(env, napi_typeof(env, argv[2], &kind));
    if (kind == napi_string && !stringOf(env, argv[2], profilePrefix)) return fail(env, "createSession: bad profile prefix");
  }
  bool typed = false;
  if (argc < 2 || napi_is_typedarray(env, argv[0], &typed) != napi_ok || !typed) return fail(env, "createSession(model: Uint8Array, threads)");
  napi_typedarray_type type;
  size_t length;
  void* bytes;
  CHECK_NAPI(env, napi_get_typedarray_info(env, argv[0], &type, &length, &bytes, nullptr, nullptr));
  int32_t threads = 1;
  CHECK_NAPI(env, napi_get_value_int32(env, argv[1], &threads));
  const ort::Api& api = *runtime().api;
  ort::SessionOptions* options = nullptr;
  std::string e = takeError(api.call<ort::Status*>(ort::kCreateSessionOptions, &options));
  if (e.empty()) e = takeError(api.call<ort::Status*>(ort::kSetIntraOpNumThreads, options, static_cast<int>(threads)));
  if (e.empty()) e = takeError(api.call<ort::Status*>(ort::kSetInterOpNumThreads, options, 1));
  if (e.empty()) e = takeError(api.call<ort::Status*>(ort::kSetSessionExecutionMode, options, 0 /* sequential */));
  if (e.empty()) e = takeError(api.call<ort::Status*>(ort::kSetSessionGraphOptimizationLevel, options, 99 /* all */));
  if (e.empty()) e = takeError(api.call<ort::Status*>(ort::kAddSessionConfigEntry, options, "session.intra_op.allow_spinning", spin ? "1" : "0"));
  if (e.empty()) e = takeError(api.call<ort::Status*>(ort::kAddCustomOpDomain, options, runtime().domain));
  if (e.empty() && !profilePrefix.empty()) e = takeError(api.call<ort::Status*>(ort::kEnableProfiling, options, profilePrefix.c_str()));
  auto* handle = new SessionHandle();
  if (e.empty()) e = takeError(api.call<ort::Status*>(ort::kCreateSessionFromArray, static_cast<const ort::Env*>(runtime().env), static_cast<const void*>(bytes), length, static_cast<const ort::SessionOptions*>(options), &handle->session));
  if (options != nullptr) api.call<void>(ort::kReleaseSessionOptions, options);
  if (!e.empty()) {
    delete handle;
    return fail(env, e);
  }
  napi_value external;
  CHECK_NAPI(env, napi_create_external(env, handle, finalizeSession, nullptr, &external));
  return external;
}

SessionHandle* sessionOf(napi_env env, napi_value v) {
  void* data = nullptr;
  if (napi_get_value_external(env, v, &data) != napi_ok) return nullptr;
  return static_cast<SessionHandle*>(data);
}

napi_value ReleaseSession(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  SessionHandle* handle = argc < 1 ? nullptr : sessionOf(env, argv[0]);
  if (handle == nullptr) return fail(env, "releaseSession(session)");
  if (handle->session != nullptr) runtime().api->call<void>(ort::kReleaseSession, handle->session);
  handle->session = nullptr;
  return nullptr;
}

napi_value EndProfiling(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  SessionHandle* handle = argc < 1 ? nullptr : sessionOf(env, argv[0]);
  if (handle == nullptr || handle->session == nullptr) return fail(env, "endProfiling(session): no open session");
  ort::Allocator* allocator = nullptr;
  std::string e = takeError(runtime().api->call<ort::Status*>(ort::kGetAllocatorWithDefaultOptions, &allocator));
  char* file = nullptr;
  if (e.empty()) e = takeError(runtime().api->call<ort::Status*>(ort::kSessionEndProfiling, handle->session, allocator, &file));
  if (!e.empty()) return fail(env, e);
  napi_value result;
  napi_status made = napi_create_string_utf8(env, file == nullptr ? "" : file, NAPI_AUTO_LENGTH, &result);
  if (file != nullptr) runtime().api->call<ort::Status*>(ort::kAllocatorFree, allocator, static_cast<void*>(file));
  if (made != napi_ok) return fail(env, "endProfiling: cannot return the file name");
  return result;
}

struct Values {
  std::vector<ort::Value*> items;
  ~Values() {
    for (ort::Value* v : items)
      if (v != nullptr) runtime().api->call<void>(ort::kReleaseValue, v);
  }
};

napi_value Run(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  SessionHandle* handle = argc < 4 ? nullptr : sessionOf(env, argv[0]);
  if (handle == nullptr || handle->session == nullptr) return fail(env, "run(session, inputNames, inputs, outputNames): no open session");
  std::vector<std::string> inputNames, outputNames;
  if (!stringsOf(env, argv[1], inputNames) || !stringsOf(env, argv[3], outputNames)) return fail(env, "run: names must be arrays of strings");
  const ort::Api& api = *runtime().api;
  Values inputs;
  inputs.items.assign(inputNames.size(), nullptr);
  for (size_t i = 0; i < inputNames.size(); i++) {
    napi_value tensor, typeValue, dataValue, dimsValue;
    CHECK_NAPI(env, napi_get_element(env, argv[2], static_cast<uint32_t>(i), &tensor));
    std::string typeName;
    if (napi_get_named_property(env, tensor, "type", &typeValue) != napi_ok || !stringOf(env, typeValue, typeName)) return fail(env, "run: input " + inputNames[i] + " has no type");
    const int type = elementTypeOf(typeName);
    if (type == 0) return fail(env, "run: input " + inputNames[i] + " has unsupported type " + typeName);
    CHECK_NAPI(env, napi_get_named_property(env, tensor, "data", &dataValue));
    CHECK_NAPI(env, napi_get_named_property(env, tensor, "dims", &dimsValue));
    bool typed = false;
    if (napi_is_typedarray(env, dataValue, &typed) != napi_ok || !typed) return fail(env, "run: input " + inputNames[i] + " data is not a typed array");
    napi_typedarray_type arrayType;
    size_t elements;
    void* data;
    CHECK_NAPI(env, napi_get_typedarray_info(env, dataValue, &arrayType, &elements, &data, nullptr, nullptr));
    uint32_t rank = 0;
    CHECK_NAPI(env, napi_get_array_length(env, dimsValue, &rank));
    std::vector<int64_t> dims(rank);
    int64_t count = 1;
    for (uint32_t d = 0; d < rank; d++) {
      napi_value dim;
      CHECK_NAPI(env, napi_get_element(env, dimsValue, d, &dim));
      CHECK_NAPI(env, napi_get_value_int64(env, dim, &dims[d]));
      count *= dims[d];
    }
    JsArrayKind kind;
    jsKindOf(type, kind);
    if (static_cast<size_t>(count) != elements) return fail(env, "run: input " + inputNames[i] + " has " + std::to_string(elements) + " elements for its dims");
    std::string e = takeError(api.call<ort::Status*>(ort::kCreateTensorWithDataAsOrtValue, static_cast<const ort::MemoryInfo*>(runtime().cpu), data, elements * kind.bytes, static_cast<const int64_t*>(dims.data()), dims.size(), type, &inputs.items[i]));
    if (!e.empty()) return fail(env, "run: input " + inputNames[i] + ": " + e);
  }
  std::vector<const char*> inNames, outNames;
  for (auto& s : inputNames) inNames.push_back(s.c_str());
  for (auto& s : outputNames) outNames.push_back(s.c_str());
  Values outputs;
  outputs.items.assign(outputNames.size(), nullptr);
  std::string e = takeError(api.call<ort::Status*>(ort::kRun, handle->session, static_cast<const void*>(nullptr), inNames.data(),
                                                   const_cast<const ort::Value* const*>(inputs.items.data()), inputs.items.size(),
                                                   outNames.data(), outNames.size(), outputs.items.data()));
  if (!e.empty()) return fail(env, e);
  napi_value result;
  CHECK_NAPI(env, napi_create_array_with_length(env, outputs.items.size(), &result));
  for (size_t i = 0; i < outputs.items.size(); i++) {
    ort::TensorTypeAndShapeInfo* shape = nullptr;
    e = takeError(api.call<ort::Status*>(ort::kGetTensorTypeAndShape, static_cast<const ort::Value*>(outputs.items[i]), &shape));
    if (!e.empty()) return fail(env, "run: output " + outputNames[i] + ": " + e);
    int type = 0;
    size_t rank = 0, count = 0;
    api.call<ort::Status*>(ort::kGetTensorElementType, static_cast<const ort::TensorTypeAndShapeInfo*>(shape), &type);
    api.call<ort::Status*>(ort::kGetDimensionsCount, static_cast<const ort::TensorTypeAndShapeInfo*>(shape), &rank);
    std::vector<int64_t> dims(rank);
    api.call<ort::Status*>(ort::kGetDimensions, static_cast<const ort::TensorTypeAndShapeInfo*>(shape), dims.data(), rank);
    api.call<ort::Status*>(ort::kGetTensorShapeElementCount, static_cast<const ort::TensorTypeAndShapeInfo*>(shape), &count);
    api.call<void>(ort::kReleaseTensorTypeAndShapeInfo, shape);
    JsArrayKind kind;
    if (!jsKindOf(type, kind)) return fail(env, "run: output " + outputNames[i] + " has unsupported element type " + std::to_string(type));
    void* source = nullptr;
    takeError(api.call<ort::Status*>(ort::kGetTensorMutableData, outputs.items[i], &source));
    napi_value buffer, array, tensor, typeValue, dimsValue;
    void* target = nullptr;
    CHECK_NAPI(env, napi_create_arraybuffer(env, count * kind.bytes, &target, &buffer));
    if (count > 0) std::memcpy(target, source, count * kind.bytes);
    CHECK_NAPI(env, napi_create_typedarray(env, kind.array, count, buffer, 0, &array));
    CHECK_NAPI(env, napi_create_object(env, &tensor));
    CHECK_NAPI(env, napi_create_string_utf8(env, kind.name, NAPI_AUTO_LENGTH, &typeValue));
    CHECK_NAPI(env, napi_create_array_with_length(env, rank, &dimsValue));
    for (size_t d = 0; d < rank; d++) {
      napi_value dim;
      CHECK_NAPI(env, napi_create_int64(env, dims[d], &dim));
      CHECK_NAPI(env, napi_set_element(env, dimsValue, static_cast<uint32_t>(d), dim));
    }
    CHECK_NAPI(env, napi_set_named_property(env, tensor, "type", typeValue));
    CHECK_NAPI(env, napi_set_named_property(env, tensor, "data", array));
    CHECK_NAPI(env, napi_set_named_property(env, tensor, "dims", dimsValue));
    CHECK_NAPI(env, napi_set_element(env, result, static_cast<uint32_t>(i), tensor));
  }
  return result;
}

napi_value ConvWeightGrad(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc < 4) return fail(env, "convWeightGrad(x, dy, geometry, vectorised)");
  float* data[2];
  size_t lengths[2];
  for (int i = 0; i < 2; i++) {
    napi_typedarray_type type;
    void* p;
    if (napi_get_typedarray_info(env, argv[i], &type, &lengths[i], &p, nullptr, nullptr) != napi_ok || type != napi_float32_array)
      return fail(env, "convWeightGrad: x and dy must be Float32Arrays");
    data[i] = static_cast<float*>(p);
  }
  int64_t v[13];
  for (uint32_t i = 0; i < 13; i++) {
    napi_value item;
    CHECK_NAPI(env, napi_get_element(env, argv[2], i, &item));
    CHECK_NAPI(env, napi_get_value_int64(env, item, &v[i]));
  }
  bool vectorised = true;
  CHECK_NAPI(env, napi_get_value_bool(env, argv[3], &vectorised));
  const ConvWeightGradGeometry g{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12]};
  if (!convWeightGradValid(g)) return fail(env, "convWeightGrad: inconsistent geometry");
  if (static_cast<int64_t>(lengths[0]) != g.batch * g.inChannels * g.height * g.width || static_cast<int64_t>(lengths[1]) != g.batch * g.outChannels * g.outHeight * g.outWidth)
    return fail(env, "convWeightGrad: x or dy does not match the geometry");
  const size_t count = static_cast<size_t>(g.outChannels * g.inChannels * g.kernelHeight * g.kernelWidth);
  napi_value buffer, result;
  void* out = nullptr;
  CHECK_NAPI(env, napi_create_arraybuffer(env, count * sizeof(float), &out, &buffer));
  std::vector<float> scratch;
  convWeightGrad(data[0], data[1], static_cast<float*>(out), g, scratch, vectorised);
  CHECK_NAPI(env, napi_create_typedarray(env, napi_float32_array, count, buffer, 0, &result));
  return result;
}

napi_value EluExp(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (argc < 2 || napi_get_typedarray_info(env, argv[0], &type, &length, &data, nullptr, nullptr) != napi_ok || type != napi_float32_array)
    return fail(env, "eluExp(x: Float32Array, vectorised)");
  bool vectorised = true;
  CHECK_NAPI(env, napi_get_value_bool(env, argv[1], &vectorised));
  napi_value buffer, y, e, result;
  void* out = nullptr;
  CHECK_NAPI(env, napi_create_arraybuffer(env, 2 * length * sizeof(float), &out, &buffer));
  float* o = static_cast<float*>(out);
  eluExp(static_cast<const float*>(data), o, o + length, static_cast<int64_t>(length), vectorised);
  CHECK_NAPI(env, napi_create_typedarray(env, napi_float32_array, length, buffer, 0, &y));
  CHECK_NAPI(env, napi_create_typedarray(env, napi_float32_array, length, buffer, length * sizeof(float), &e));
  CHECK_NAPI(env, napi_create_array_with_length(env, 2, &result));
  CHECK_NAPI(env, napi_set_element(env, result, 0, y));
  CHECK_NAPI(env, napi_set_element(env, result, 1, e));
  return result;
}

napi_value Init(napi_env env, napi_value exports) {
  const napi_property_descriptor properties[] = {
      {"load", nullptr, Load, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"createSession", nullptr, CreateSession, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"run", nullptr, Run, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"releaseSession", nullptr, ReleaseSession, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"endProfiling", nullptr, EndProfiling, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"eluExp", nullptr, EluExp, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"convWeightGrad", nullptr, ConvWeightGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof(properties) / sizeof(properties[0]), properties);
  return exports;
}

}  // namespace

NAPI_MODULE_INIT() { return Init(env, exports); }
