// The few entries of ONNX Runtime's C API table (struct OrtApi) this addon calls, by position.
// The table only ever grows at its end (ONNX Runtime's ABI promise), so these positions hold for every
// release from API version 13 on; the addon asks for version 13 (GetApi returns null where a library lacks it).
#pragma once
#include <cstddef>
#include <cstdint>

namespace ort {

struct Status;
struct Env;
struct Session;
struct SessionOptions;
struct Value;
struct MemoryInfo;
struct TensorTypeAndShapeInfo;
struct CustomOpDomain;
struct KernelInfo;
struct KernelContext;
struct Allocator;

enum Slot : std::size_t {
  kGetErrorMessage = 2,
  kCreateEnv = 3,
  kCreateSessionFromArray = 8,
  kRun = 9,
  kCreateSessionOptions = 10,
  kSetSessionExecutionMode = 13,
  kEnableProfiling = 14,
  kSetSessionGraphOptimizationLevel = 23,
  kSetIntraOpNumThreads = 24,
  kSetInterOpNumThreads = 25,
  kCreateCustomOpDomain = 26,
  kCustomOpDomainAdd = 27,
  kAddCustomOpDomain = 28,
  kCreateTensorWithDataAsOrtValue = 49,
  kGetTensorMutableData = 51,
  kGetTensorElementType = 60,
  kGetDimensionsCount = 61,
  kGetDimensions = 62,
  kGetTensorShapeElementCount = 64,
  kGetTensorTypeAndShape = 65,
  kCreateCpuMemoryInfo = 69,
  kAllocatorFree = 76,
  kGetAllocatorWithDefaultOptions = 78,
  kKernelContextGetInput = 90,
  kKernelContextGetOutput = 91,
  kReleaseStatus = 93,
  kReleaseMemoryInfo = 94,
  kReleaseSession = 95,
  kReleaseValue = 96,
  kReleaseTensorTypeAndShapeInfo = 99,
  kReleaseSessionOptions = 100,
  kSessionEndProfiling = 110,
  kAddSessionConfigEntry = 130,
  kKernelInfoGetAttributeArrayInt64 = 163,
};

// ONNXTensorElementDataType values used here.
enum ElementType : int { kFloat = 1, kUint8 = 2, kInt8 = 3, kInt32 = 6, kInt64 = 7, kBool = 9, kDouble = 11 };

struct ApiBase {
  const void* (*GetApi)(uint32_t version);
  const char* (*GetVersionString)();
};

// The custom-operator description ONNX Runtime reads (struct OrtCustomOp), up to the fields of
// version 15; `version` tells the runtime which fields exist.
struct CustomOp {
  uint32_t version;
  void* (*CreateKernel)(const CustomOp* op, const void* api, const KernelInfo* info);
  const char* (*GetName)(const CustomOp* op);
  const char* (*GetExecutionProviderType)(const CustomOp* op);
  int (*GetInputType)(const CustomOp* op, size_t index);
  size_t (*GetInputTypeCount)(const CustomOp* op);
  int (*GetOutputType)(const CustomOp* op, size_t index);
  size_t (*GetOutputTypeCount)(const CustomOp* op);
  void (*KernelCompute)(void* kernel, KernelContext* context);
  void (*KernelDestroy)(void* kernel);
  int (*GetInputCharacteristic)(const CustomOp* op, size_t index);
  int (*GetOutputCharacteristic)(const CustomOp* op, size_t index);
  int (*GetInputMemoryType)(const CustomOp* op, size_t index);
  int (*GetVariadicInputMinArity)(const CustomOp* op);
  int (*GetVariadicInputHomogeneity)(const CustomOp* op);
  int (*GetVariadicOutputMinArity)(const CustomOp* op);
  int (*GetVariadicOutputHomogeneity)(const CustomOp* op);
};

/** The API table as an array of entries, each called through `Api::call` with its own signature. */
class Api {
 public:
  explicit Api(const void* table) : table_(static_cast<void* const*>(table)) {}
  template <typename R, typename... A>
  R call(Slot slot, A... args) const {
    return reinterpret_cast<R (*)(A...)>(table_[slot])(args...);
  }
 private:
  void* const* table_;
};

}  // namespace ort
