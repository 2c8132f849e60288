// A small ONNX Runtime binding for the training sessions: the same libonnxruntime that onnxruntime-node
// ships and loads, driven through its C API, with this project's custom operators registered
// (onnxruntime-node cannot register any). Inputs are passed to the runtime without copying.
//   load(libraryPath) → { version, vectorised }
//   createSession(model: Uint8Array, threads, profilePrefix?) → session
//   endProfiling(session) → the profile's file name (sessions created with a profilePrefix)
//   run(session, inputNames, inputs: {type, data, dims}[], outputNames) → {type, data, dims}[]
//   releaseSession(session)
//   convWeightGrad(x, dy, geometry[13], vectorised) → dW; eluExp(x, vectorised) → [y, e]: the kernels alone, for the tests
#include <dlfcn.h>
#include <node_api.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <mutex>
#include <string>
#include <vector>

#include "conv-weight-grad.h"
#include "elu-exp.h"
#include "plane-ops.h"
#include "ort-slots.h"

namespace {

struct Runtime {
  const ort::Api* api = nullptr;
  ort::Env* env = nullptr;
  ort::MemoryInfo* cpu = nullptr;
  ort::CustomOpDomain* domain = nullptr;
  std::string version;
  std::string error;
};

Runtime runtime;
std::once_flag loadOnce;

std::string takeError(ort::Status* status) {
  if (status == nullptr) return "";
  std::string message = runtime.api->call<const char*>(ort::kGetErrorMessage, static_cast<const ort::Status*>(status));
  runtime.api->call<void>(ort::kReleaseStatus, status);
  return message.empty() ? "unknown ONNX Runtime error" : message;
}

// ---- the ConvWeightGrad operator (domain com.moodlsr) ---------------------------------------------

struct ConvWeightGradKernel {
  int64_t kernelHeight = 0, kernelWidth = 0;
  int64_t pads[4] = {0, 0, 0, 0};  // top, left, bottom, right (ONNX order)
  std::vector<float> scratch;
};

std::vector<int64_t> intsAttribute(const ort::KernelInfo* info, const char* name) {
  size_t size = 0;
  if (!takeError(runtime.api->call<ort::Status*>(ort::kKernelInfoGetAttributeArrayInt64, info, name, static_cast<int64_t*>(nullptr), &size)).empty()) return {};
  std::vector<int64_t> values(size);
  if (size > 0 && !takeError(runtime.api->call<ort::Status*>(ort::kKernelInfoGetAttributeArrayInt64, info, name, values.data(), &size)).empty()) return {};
  return values;
}

void* createConvWeightGrad(const ort::CustomOp*, const void*, const ort::KernelInfo* info) {
  auto* kernel = new ConvWeightGradKernel();
  const std::vector<int64_t> shape = intsAttribute(info, "kernel_shape");
  const std::vector<int64_t> pads = intsAttribute(info, "pads");
  if (shape.size() == 2) {
    kernel->kernelHeight = shape[0];
    kernel->kernelWidth = shape[1];
  }
  if (pads.size() == 4) std::copy(pads.begin(), pads.end(), kernel->pads);
  return kernel;
}

std::vector<int64_t> dimsOf(const ort::Value* value) {
  ort::TensorTypeAndShapeInfo* info = nullptr;
  if (!takeError(runtime.api->call<ort::Status*>(ort::kGetTensorTypeAndShape, value, &info)).empty()) return {};
  size_t rank = 0;
  runtime.api->call<ort::Status*>(ort::kGetDimensionsCount, static_cast<const ort::TensorTypeAndShapeInfo*>(info), &rank);
  std::vector<int64_t> dims(rank);
  runtime.api->call<ort::Status*>(ort::kGetDimensions, static_cast<const ort::TensorTypeAndShapeInfo*>(info), dims.data(), rank);
  runtime.api->call<void>(ort::kReleaseTensorTypeAndShapeInfo, info);
  return dims;
}

float* tensorData(const ort::Value* value) {
  void* data = nullptr;
  takeError(runtime.api->call<ort::Status*>(ort::kGetTensorMutableData, const_cast<ort::Value*>(value), &data));
  return static_cast<float*>(data);
}

void computeConvWeightGrad(void* state, ort::KernelContext* context) {
  auto* kernel = static_cast<ConvWeightGradKernel*>(state);
  const ort::Value* x = nullptr;
  const ort::Value* dy = nullptr;
  runtime.api->call<ort::Status*>(ort::kKernelContextGetInput, static_cast<const ort::KernelContext*>(context), size_t{0}, &x);
  runtime.api->call<ort::Status*>(ort::kKernelContextGetInput, static_cast<const ort::KernelContext*>(context), size_t{1}, &dy);
  const std::vector<int64_t> xd = dimsOf(x), dyd = dimsOf(dy);
  ConvWeightGradGeometry g{};
  const bool ranked = xd.size() == 4 && dyd.size() == 4 && xd[0] == dyd[0];
  if (ranked) {
    g = {xd[0], xd[1], dyd[1], xd[2], xd[3], dyd[2], dyd[3], kernel->kernelHeight, kernel->kernelWidth,
         kernel->pads[0], kernel->pads[1], kernel->pads[2], kernel->pads[3]};
  }
  const int64_t outDims[4] = {ranked ? g.outChannels : 0, ranked ? g.inChannels : 0, kernel->kernelHeight, kernel->kernelWidth};
  ort::Value* out = nullptr;
  if (!takeError(runtime.api->call<ort::Status*>(ort::kKernelContextGetOutput, context, size_t{0}, outDims, size_t{4}, &out)).empty()) return;
  float* dw = tensorData(out);
  const int64_t count = outDims[0] * outDims[1] * outDims[2] * outDims[3];
  if (!ranked || !convWeightGradValid(g)) {
    // The custom-operator interface of this API version cannot return an error: NaNs make it visible.
    std::fill(dw, dw + count, std::numeric_limits<float>::quiet_NaN());
    return;
  }
  convWeightGrad(tensorData(x), tensorData(dy), dw, g, kernel->scratch);
}

void destroyConvWeightGrad(void* state) { delete static_cast<ConvWeightGradKernel*>(state); }

ort::CustomOp convWeightGradOp() {
  ort::CustomOp op{};
  op.version = 15;
  op.CreateKernel = createConvWeightGrad;
  op.GetName = [](const ort::CustomOp*) { return "ConvWeightGrad"; };
  op.GetExecutionProviderType = [](const ort::CustomOp*) -> const char* { return "CPUExecutionProvider"; };
  op.GetInputType = [](const ort::CustomOp*, size_t) { return static_cast<int>(ort::kFloat); };
  op.GetInputTypeCount = [](const ort::CustomOp*) { return size_t{2}; };
  op.GetOutputType = [](const ort::CustomOp*, size_t) { return static_cast<int>(ort::kFloat); };
  op.GetOutputTypeCount = [](const ort::CustomOp*) { return size_t{1}; };
  op.KernelCompute = computeConvWeightGrad;
  op.KernelDestroy = destroyConvWeightGrad;
  op.GetInputCharacteristic = [](const ort::CustomOp*, size_t) { return 0; };   // required
  op.GetOutputCharacteristic = [](const ort::CustomOp*, size_t) { return 0; };  // required
  op.GetInputMemoryType = [](const ort::CustomOp*, size_t) { return 0; };       // default (CPU)
  op.GetVariadicInputMinArity = [](const ort::CustomOp*) { return 1; };
  op.GetVariadicInputHomogeneity = [](const ort::CustomOp*) { return 1; };
  op.GetVariadicOutputMinArity = [](const ort::CustomOp*) { return 1; };
  op.GetVariadicOutputHomogeneity = [](const ort::CustomOp*) { return 1; };
  return op;
}

ort::CustomOp convWeightGradDescription = convWeightGradOp();

// ---- the EluExp operator (domain com.moodlsr): x → [elu(x), exp(min(x, 0))] ----------------------

void* createEluExp(const ort::CustomOp*, const void*, const ort::KernelInfo*) { return new int(0); }

void computeEluExp(void*, ort::KernelContext* context) {
  const ort::Value* x = nullptr;
  runtime.api->call<ort::Status*>(ort::kKernelContextGetInput, static_cast<const ort::KernelContext*>(context), size_t{0}, &x);
  const std::vector<int64_t> dims = dimsOf(x);
  int64_t count = 1;
  for (int64_t d : dims) count *= d;
  ort::Value* outputs[2] = {nullptr, nullptr};
  for (size_t i = 0; i < 2; i++)
    if (!takeError(runtime.api->call<ort::Status*>(ort::kKernelContextGetOutput, context, i, static_cast<const int64_t*>(dims.data()), dims.size(), &outputs[i])).empty()) return;
  eluExp(tensorData(x), tensorData(outputs[0]), tensorData(outputs[1]), count);
}

ort::CustomOp eluExpOp() {
  ort::CustomOp op = convWeightGradOp();
  op.CreateKernel = createEluExp;
  op.GetName = [](const ort::CustomOp*) { return "EluExp"; };
  op.GetInputTypeCount = [](const ort::CustomOp*) { return size_t{1}; };
  op.GetOutputTypeCount = [](const ort::CustomOp*) { return size_t{2}; };
  op.KernelCompute = computeEluExp;
  op.KernelDestroy = [](void* state) { delete static_cast<int*>(state); };
  return op;
}

ort::CustomOp eluExpDescription = eluExpOp();

// ---- PlaneSums (dy, x → Σ dy, Σ dy·x per plane) and PlaneCombine (dy, x, a, b, c → a·dy − b·x + c) --

/** Planes and plane size of an NCHW value: N·C planes of H·W. */
bool planesOf(const std::vector<int64_t>& dims, int64_t& planes, int64_t& size) {
  if (dims.size() != 4) return false;
  planes = dims[0] * dims[1];
  size = dims[2] * dims[3];
  return true;
}

int64_t elementsOf(const ort::Value* v) {
  int64_t count = 1;
  for (int64_t d : dimsOf(v)) count *= d;
  return count;
}

void computePlaneSums(void*, ort::KernelContext* context) {
  const ort::Value* in[2] = {nullptr, nullptr};
  for (size_t i = 0; i < 2; i++) runtime.api->call<ort::Status*>(ort::kKernelContextGetInput, static_cast<const ort::KernelContext*>(context), i, &in[i]);
  const std::vector<int64_t> dims = dimsOf(in[0]);
  int64_t planes = 0, size = 0;
  const bool ok = planesOf(dims, planes, size) && dimsOf(in[1]) == dims;
  const int64_t outDims[4] = {ok ? dims[0] : 0, ok ? dims[1] : 0, 1, 1};
  ort::Value* out[2] = {nullptr, nullptr};
  for (size_t i = 0; i < 2; i++)
    if (!takeError(runtime.api->call<ort::Status*>(ort::kKernelContextGetOutput, context, i, outDims, size_t{4}, &out[i])).empty()) return;
  if (ok) planeSums(tensorData(in[0]), tensorData(in[1]), tensorData(out[0]), tensorData(out[1]), planes, size);
}

void computePlaneCombine(void*, ort::KernelContext* context) {
  const ort::Value* in[5] = {nullptr, nullptr, nullptr, nullptr, nullptr};
  for (size_t i = 0; i < 5; i++) runtime.api->call<ort::Status*>(ort::kKernelContextGetInput, static_cast<const ort::KernelContext*>(context), i, &in[i]);
  const std::vector<int64_t> dims = dimsOf(in[0]);
  int64_t planes = 0, size = 0;
  bool ok = planesOf(dims, planes, size) && dimsOf(in[1]) == dims;
  for (int i = 2; ok && i < 5; i++) ok = elementsOf(in[i]) == planes;
  ort::Value* out = nullptr;
  if (!takeError(runtime.api->call<ort::Status*>(ort::kKernelContextGetOutput, context, size_t{0}, static_cast<const int64_t*>(dims.data()), dims.size(), &out)).empty()) return;
  float* o = tensorData(out);
  if (!ok) {
    std::fill(o, o + elementsOf(out), std::numeric_limits<float>::quiet_NaN());
    return;
  }
  planeCombine(tensorData(in[0]), tensorData(in[1]), tensorData(in[2]), tensorData(in[3]), tensorData(in[4]), o, planes, size);
}

ort::CustomOp planeSumsOp() {
  ort::CustomOp op = eluExpOp();
  op.GetName = [](const ort::CustomOp*) { return "PlaneSums"; };
  op.GetInputTypeCount = [](const ort::CustomOp*) { return size_t{2}; };
  op.GetOutputTypeCount = [](const ort::CustomOp*) { return size_t{2}; };
  op.KernelCompute = computePlaneSums;
  return op;
}

ort::CustomOp planeCombineOp() {
  ort::CustomOp op = eluExpOp();
  op.GetName = [](const ort::CustomOp*) { return "PlaneCombine"; };
  op.GetInputTypeCount = [](const ort::CustomOp*) { return size_t{5}; };
  op.GetOutputTypeCount = [](const ort::CustomOp*) { return size_t{1}; };
  op.KernelCompute = computePlaneCombine;
  return op;
}

ort::CustomOp planeSumsDescription = planeSumsOp();
ort::CustomOp planeCombineDescription = planeCombineOp();

// ---- loading -------------------------------------------------------------------------------------

void loadRuntime(const std::string& path) {
  void* library = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    runtime.error = std::string("cannot open ") + path + ": " + dlerror();
    return;
  }
  auto getBase = reinterpret_cast<const ort::ApiBase* (*)()>(dlsym(library, "OrtGetApiBase"));
  if (getBase == nullptr) {
    runtime.error = path + " has no OrtGetApiBase";
    return;
  }
  const ort::ApiBase* base = getBase();
  const void* table = base->GetApi(13);
  if (table == nullptr) {
    runtime.error = path + " does not offer C API version 13";
    return;
  }
  runtime.api = new ort::Api(table);
  runtime.version = base->GetVersionString();
  const ort::Api& api = *runtime.api;
  std::string e = takeError(api.call<ort::Status*>(ort::kCreateEnv, 3 /* error */, "moodlsr-kernels", &runtime.env));
  if (e.empty()) e = takeError(api.call<ort::Status*>(ort::kCreateCpuMemoryInfo, 1 /* arena */, 0 /* default */, &runtime.cpu));
  if (e.empty()) e = takeError(api.call<ort::Status*>(ort::kCreateCustomOpDomain, "com.moodlsr", &runtime.domain));
  if (e.empty()) e = takeError(api.call<ort::Status*>(ort::kCustomOpDomainAdd, runtime.domain, static_cast<const ort::CustomOp*>(&convWeightGradDescription)));
  if (e.empty()) e = takeError(api.call<ort::Status*>(ort::kCustomOpDomainAdd, runtime.domain, static_cast<const ort::CustomOp*>(&eluExpDescription)));
  if (e.empty()) e = takeError(api.call<ort::Status*>(ort::kCustomOpDomainAdd, runtime.domain, static_cast<const ort::CustomOp*>(&planeSumsDescription)));
  if (e.empty()) e = takeError(api.call<ort::Status*>(ort::kCustomOpDomainAdd, runtime.domain, static_cast<const ort::CustomOp*>(&planeCombineDescription)));
  if (!e.empty()) {
    runtime.error = e;
    runtime.api = nullptr;
  }
}

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
  if (handle->session != nullptr) runtime.api->call<void>(ort::kReleaseSession, handle->session);
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
  std::call_once(loadOnce, loadRuntime, path);
  if (runtime.api == nullptr) return fail(env, runtime.error);
  napi_value result, version, vectorised;
  CHECK_NAPI(env, napi_create_object(env, &result));
  CHECK_NAPI(env, napi_create_string_utf8(env, runtime.version.c_str(), NAPI_AUTO_LENGTH, &version));
  CHECK_NAPI(env, napi_get_boolean(env, convWeightGradVectorised(), &vectorised));
  CHECK_NAPI(env, napi_set_named_property(env, result, "version", version));
  CHECK_NAPI(env, napi_set_named_property(env, result, "vectorised", vectorised));
  return result;
}

napi_value CreateSession(napi_env env, napi_callback_info info) {
  if (runtime.api == nullptr) return fail(env, "load() first");
  size_t argc = 3;
  napi_value argv[3];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
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
  const ort::Api& api = *runtime.api;
  ort::SessionOptions* options = nullptr;
  std::string e = takeError(api.call<ort::Status*>(ort::kCreateSessionOptions, &options));
  if (e.empty()) e = takeError(api.call<ort::Status*>(ort::kSetIntraOpNumThreads, options, static_cast<int>(threads)));
  if (e.empty()) e = takeError(api.call<ort::Status*>(ort::kSetInterOpNumThreads, options, 1));
  if (e.empty()) e = takeError(api.call<ort::Status*>(ort::kSetSessionExecutionMode, options, 0 /* sequential */));
  if (e.empty()) e = takeError(api.call<ort::Status*>(ort::kSetSessionGraphOptimizationLevel, options, 99 /* all */));
  if (e.empty()) e = takeError(api.call<ort::Status*>(ort::kAddSessionConfigEntry, options, "session.intra_op.allow_spinning", "0"));
  if (e.empty()) e = takeError(api.call<ort::Status*>(ort::kAddCustomOpDomain, options, runtime.domain));
  if (e.empty() && !profilePrefix.empty()) e = takeError(api.call<ort::Status*>(ort::kEnableProfiling, options, profilePrefix.c_str()));
  auto* handle = new SessionHandle();
  if (e.empty()) e = takeError(api.call<ort::Status*>(ort::kCreateSessionFromArray, static_cast<const ort::Env*>(runtime.env), static_cast<const void*>(bytes), length, static_cast<const ort::SessionOptions*>(options), &handle->session));
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
  if (handle->session != nullptr) runtime.api->call<void>(ort::kReleaseSession, handle->session);
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
  std::string e = takeError(runtime.api->call<ort::Status*>(ort::kGetAllocatorWithDefaultOptions, &allocator));
  char* file = nullptr;
  if (e.empty()) e = takeError(runtime.api->call<ort::Status*>(ort::kSessionEndProfiling, handle->session, allocator, &file));
  if (!e.empty()) return fail(env, e);
  napi_value result;
  napi_status made = napi_create_string_utf8(env, file == nullptr ? "" : file, NAPI_AUTO_LENGTH, &result);
  if (file != nullptr) runtime.api->call<ort::Status*>(ort::kAllocatorFree, allocator, static_cast<void*>(file));
  if (made != napi_ok) return fail(env, "endProfiling: cannot return the file name");
  return result;
}

struct Values {
  std::vector<ort::Value*> items;
  ~Values() {
    for (ort::Value* v : items)
      if (v != nullptr) runtime.api->call<void>(ort::kReleaseValue, v);
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
  const ort::Api& api = *runtime.api;
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
    std::string e = takeError(api.call<ort::Status*>(ort::kCreateTensorWithDataAsOrtValue, static_cast<const ort::MemoryInfo*>(runtime.cpu), data, elements * kind.bytes, static_cast<const int64_t*>(dims.data()), dims.size(), type, &inputs.items[i]));
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
