#include "custom-ops.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "conv-weight-grad.h"
#include "elu-exp.h"
#include "plane-ops.h"
#include "runtime.h"

namespace {

// ---- the ConvWeightGrad operator (domain com.moodlsr) ---------------------------------------------

struct ConvWeightGradKernel {
  int64_t kernelHeight = 0, kernelWidth = 0;
  int64_t pads[4] = {0, 0, 0, 0};  // top, left, bottom, right (ONNX order)
  std::vector<float> scratch;
};

std::vector<int64_t> intsAttribute(const ort::KernelInfo* info, const char* name) {
  size_t size = 0;
  if (!takeError(runtime().api->call<ort::Status*>(ort::kKernelInfoGetAttributeArrayInt64, info, name, static_cast<int64_t*>(nullptr), &size)).empty()) return {};
  std::vector<int64_t> values(size);
  if (size > 0 && !takeError(runtime().api->call<ort::Status*>(ort::kKernelInfoGetAttributeArrayInt64, info, name, values.data(), &size)).empty()) return {};
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

void computeConvWeightGrad(void* state, ort::KernelContext* context) {
  auto* kernel = static_cast<ConvWeightGradKernel*>(state);
  const ort::Value* x = nullptr;
  const ort::Value* dy = nullptr;
  runtime().api->call<ort::Status*>(ort::kKernelContextGetInput, static_cast<const ort::KernelContext*>(context), size_t{0}, &x);
  runtime().api->call<ort::Status*>(ort::kKernelContextGetInput, static_cast<const ort::KernelContext*>(context), size_t{1}, &dy);
  const std::vector<int64_t> xd = dimsOf(x), dyd = dimsOf(dy);
  ConvWeightGradGeometry g{};
  const bool ranked = xd.size() == 4 && dyd.size() == 4 && xd[0] == dyd[0];
  if (ranked) {
    g = {xd[0], xd[1], dyd[1], xd[2], xd[3], dyd[2], dyd[3], kernel->kernelHeight, kernel->kernelWidth,
         kernel->pads[0], kernel->pads[1], kernel->pads[2], kernel->pads[3]};
  }
  const int64_t outDims[4] = {ranked ? g.outChannels : 0, ranked ? g.inChannels : 0, kernel->kernelHeight, kernel->kernelWidth};
  ort::Value* out = nullptr;
  if (!takeError(runtime().api->call<ort::Status*>(ort::kKernelContextGetOutput, context, size_t{0}, outDims, size_t{4}, &out)).empty()) return;
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
  runtime().api->call<ort::Status*>(ort::kKernelContextGetInput, static_cast<const ort::KernelContext*>(context), size_t{0}, &x);
  const std::vector<int64_t> dims = dimsOf(x);
  int64_t count = 1;
  for (int64_t d : dims) count *= d;
  ort::Value* outputs[2] = {nullptr, nullptr};
  for (size_t i = 0; i < 2; i++)
    if (!takeError(runtime().api->call<ort::Status*>(ort::kKernelContextGetOutput, context, i, static_cast<const int64_t*>(dims.data()), dims.size(), &outputs[i])).empty()) return;
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

void computePlaneSums(void*, ort::KernelContext* context) {
  const ort::Value* in[2] = {nullptr, nullptr};
  for (size_t i = 0; i < 2; i++) runtime().api->call<ort::Status*>(ort::kKernelContextGetInput, static_cast<const ort::KernelContext*>(context), i, &in[i]);
  const std::vector<int64_t> dims = dimsOf(in[0]);
  int64_t planes = 0, size = 0;
  const bool ok = planesOf(dims, planes, size) && dimsOf(in[1]) == dims;
  const int64_t outDims[4] = {ok ? dims[0] : 0, ok ? dims[1] : 0, 1, 1};
  ort::Value* out[2] = {nullptr, nullptr};
  for (size_t i = 0; i < 2; i++)
    if (!takeError(runtime().api->call<ort::Status*>(ort::kKernelContextGetOutput, context, i, outDims, size_t{4}, &out[i])).empty()) return;
  if (ok) planeSums(tensorData(in[0]), tensorData(in[1]), tensorData(out[0]), tensorData(out[1]), planes, size);
}

void computePlaneCombine(void*, ort::KernelContext* context) {
  const ort::Value* in[5] = {nullptr, nullptr, nullptr, nullptr, nullptr};
  for (size_t i = 0; i < 5; i++) runtime().api->call<ort::Status*>(ort::kKernelContextGetInput, static_cast<const ort::KernelContext*>(context), i, &in[i]);
  const std::vector<int64_t> dims = dimsOf(in[0]);
  int64_t planes = 0, size = 0;
  bool ok = planesOf(dims, planes, size) && dimsOf(in[1]) == dims;
  for (int i = 2; ok && i < 5; i++) ok = elementsOf(in[i]) == planes;
  ort::Value* out = nullptr;
  if (!takeError(runtime().api->call<ort::Status*>(ort::kKernelContextGetOutput, context, size_t{0}, static_cast<const int64_t*>(dims.data()), dims.size(), &out)).empty()) return;
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

}  // namespace

std::string addCustomOps(const ort::Api& api, ort::CustomOpDomain* domain) {
  for (const ort::CustomOp* op : {&convWeightGradDescription, &eluExpDescription, &planeSumsDescription, &planeCombineDescription}) {
    std::string e = takeError(api.call<ort::Status*>(ort::kCustomOpDomainAdd, domain, op));
    if (!e.empty()) return e;
  }
  return "";
}
