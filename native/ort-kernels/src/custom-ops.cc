#include "custom-ops.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "conv-weight-grad.h"
#include "elu-exp.h"
#include "plane-ops.h"
#include "runtime.h"

namespace {

// ---- one description serves every operator ------------------------------------------------------

/**
 * An operator as ONNX Runtime reads it (`op`, first, so the runtime's pointer to it is a pointer to
 * this) with what differs between operators: name, counts of float inputs and outputs, and its kernel.
 * `create` null: a stateless kernel (the description itself stands for its state).
 */
struct OpDescription {
  ort::CustomOp op;
  const char* name;
  size_t inputs, outputs;
  void* (*create)(const ort::KernelInfo* info);
  void (*compute)(void* state, ort::KernelContext* context);
  void (*destroy)(void* state);
};

const OpDescription& describedBy(const ort::CustomOp* op) { return *reinterpret_cast<const OpDescription*>(op); }

OpDescription describe(const char* name, size_t inputs, size_t outputs, void (*compute)(void*, ort::KernelContext*),
                       void* (*create)(const ort::KernelInfo*) = nullptr, void (*destroy)(void*) = nullptr) {
  OpDescription d{};
  d.name = name;
  d.inputs = inputs;
  d.outputs = outputs;
  d.create = create;
  d.compute = compute;
  d.destroy = destroy;
  ort::CustomOp& op = d.op;
  op.version = 15;
  op.CreateKernel = [](const ort::CustomOp* self, const void*, const ort::KernelInfo* info) -> void* {
    const OpDescription& desc = describedBy(self);
    return desc.create == nullptr ? const_cast<OpDescription*>(&desc) : desc.create(info);
  };
  op.GetName = [](const ort::CustomOp* self) { return describedBy(self).name; };
  op.GetExecutionProviderType = [](const ort::CustomOp*) -> const char* { return "CPUExecutionProvider"; };
  op.GetInputType = [](const ort::CustomOp*, size_t) { return static_cast<int>(ort::kFloat); };
  op.GetInputTypeCount = [](const ort::CustomOp* self) { return describedBy(self).inputs; };
  op.GetOutputType = [](const ort::CustomOp*, size_t) { return static_cast<int>(ort::kFloat); };
  op.GetOutputTypeCount = [](const ort::CustomOp* self) { return describedBy(self).outputs; };
  op.KernelCompute = compute;
  op.KernelDestroy = destroy == nullptr ? [](void*) {} : destroy;
  op.GetInputCharacteristic = [](const ort::CustomOp*, size_t) { return 0; };   // required
  op.GetOutputCharacteristic = [](const ort::CustomOp*, size_t) { return 0; };  // required
  op.GetInputMemoryType = [](const ort::CustomOp*, size_t) { return 0; };       // default (CPU)
  op.GetVariadicInputMinArity = [](const ort::CustomOp*) { return 1; };
  op.GetVariadicInputHomogeneity = [](const ort::CustomOp*) { return 1; };
  op.GetVariadicOutputMinArity = [](const ort::CustomOp*) { return 1; };
  op.GetVariadicOutputHomogeneity = [](const ort::CustomOp*) { return 1; };
  return d;
}

const ort::Value* inputOf(ort::KernelContext* context, size_t index) {
  const ort::Value* value = nullptr;
  runtime().api->call<ort::Status*>(ort::kKernelContextGetInput, static_cast<const ort::KernelContext*>(context), index, &value);
  return value;
}

/** Output `index` allocated with `dims`, or null where the runtime refused. */
ort::Value* outputOf(ort::KernelContext* context, size_t index, const std::vector<int64_t>& dims) {
  ort::Value* value = nullptr;
  const std::string e = takeError(runtime().api->call<ort::Status*>(ort::kKernelContextGetOutput, context, index, static_cast<const int64_t*>(dims.data()), dims.size(), &value));
  return e.empty() ? value : nullptr;
}

// The custom-operator interface of this API version cannot return an error: NaNs make a bad call visible.
void fillNaN(ort::Value* value) {
  float* data = tensorData(value);
  std::fill(data, data + elementsOf(value), std::numeric_limits<float>::quiet_NaN());
}

// ---- ConvWeightGrad (x, dy; kernel_shape, pads) → dW ---------------------------------------------

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

void* createConvWeightGrad(const ort::KernelInfo* info) {
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
  const ort::Value* x = inputOf(context, 0);
  const ort::Value* dy = inputOf(context, 1);
  const std::vector<int64_t> xd = dimsOf(x), dyd = dimsOf(dy);
  ConvWeightGradGeometry g{};
  const bool ranked = xd.size() == 4 && dyd.size() == 4 && xd[0] == dyd[0];
  if (ranked) {
    g = {xd[0], xd[1], dyd[1], xd[2], xd[3], dyd[2], dyd[3], kernel->kernelHeight, kernel->kernelWidth,
         kernel->pads[0], kernel->pads[1], kernel->pads[2], kernel->pads[3]};
  }
  ort::Value* out = outputOf(context, 0, {ranked ? g.outChannels : 0, ranked ? g.inChannels : 0, kernel->kernelHeight, kernel->kernelWidth});
  if (out == nullptr) return;
  if (!ranked || !convWeightGradValid(g)) return fillNaN(out);
  convWeightGrad(tensorData(x), tensorData(dy), tensorData(out), g, kernel->scratch);
}

void destroyConvWeightGrad(void* state) { delete static_cast<ConvWeightGradKernel*>(state); }

// ---- EluExp (x) → [elu(x), exp(min(x, 0))] -------------------------------------------------------

void computeEluExp(void*, ort::KernelContext* context) {
  const ort::Value* x = inputOf(context, 0);
  const std::vector<int64_t> dims = dimsOf(x);
  ort::Value* y = outputOf(context, 0, dims);
  ort::Value* e = outputOf(context, 1, dims);
  if (y != nullptr && e != nullptr) eluExp(tensorData(x), tensorData(y), tensorData(e), elementsOf(x));
}

// ---- PlaneSums (dy, x → Σ dy, Σ dy·x per plane) and PlaneCombine (dy, x, a, b, c → a·dy − b·x + c) --

/** Planes and plane size of an NCHW value: N·C planes of H·W. */
bool planesOf(const std::vector<int64_t>& dims, int64_t& planes, int64_t& size) {
  if (dims.size() != 4) return false;
  planes = dims[0] * dims[1];
  size = dims[2] * dims[3];
  return true;
}

void computePlaneSums(void*, ort::KernelContext* context) {
  const ort::Value* dy = inputOf(context, 0);
  const ort::Value* x = inputOf(context, 1);
  const std::vector<int64_t> dims = dimsOf(dy);
  int64_t planes = 0, size = 0;
  const bool ok = planesOf(dims, planes, size) && dimsOf(x) == dims;
  const std::vector<int64_t> sumDims = {ok ? dims[0] : 0, ok ? dims[1] : 0, 1, 1};
  ort::Value* s0 = outputOf(context, 0, sumDims);
  ort::Value* s1 = outputOf(context, 1, sumDims);
  if (ok && s0 != nullptr && s1 != nullptr) planeSums(tensorData(dy), tensorData(x), tensorData(s0), tensorData(s1), planes, size);
}

void computePlaneCombine(void*, ort::KernelContext* context) {
  const ort::Value* in[5];
  for (size_t i = 0; i < 5; i++) in[i] = inputOf(context, i);
  const std::vector<int64_t> dims = dimsOf(in[0]);
  int64_t planes = 0, size = 0;
  bool ok = planesOf(dims, planes, size) && dimsOf(in[1]) == dims;
  for (int i = 2; ok && i < 5; i++) ok = elementsOf(in[i]) == planes;
  ort::Value* out = outputOf(context, 0, dims);
  if (out == nullptr) return;
  if (!ok) return fillNaN(out);
  planeCombine(tensorData(in[0]), tensorData(in[1]), tensorData(in[2]), tensorData(in[3]), tensorData(in[4]), tensorData(out), planes, size);
}

// ORT keeps pointers to these for as long as the domain lives (the process).
OpDescription operators[] = {
    describe("ConvWeightGrad", 2, 1, computeConvWeightGrad, createConvWeightGrad, destroyConvWeightGrad),
    describe("EluExp", 1, 2, computeEluExp),
    describe("PlaneSums", 2, 2, computePlaneSums),
    describe("PlaneCombine", 5, 1, computePlaneCombine),
};

}  // namespace

std::string addCustomOps(const ort::Api& api, ort::CustomOpDomain* domain) {
  for (const OpDescription& d : operators) {
    std::string e = takeError(api.call<ort::Status*>(ort::kCustomOpDomainAdd, domain, &d.op));
    if (!e.empty()) return e;
  }
  return "";
}
