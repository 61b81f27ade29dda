// cuda_layers.h in a build without CUDA: every function fails. The layers never call them
// there, since CheckLayerPlacement refuses CUDA devices in such a build.
#include "runtime/nn/internal/cuda_layers.h"

namespace usine::nn_internal {
namespace {

absl::Status NoCuda() {
  return absl::FailedPreconditionError("the CUDA layers need a build of usine with CUDA");
}

}  // namespace

absl::Status CudaGeluForward(const Tensor&, const Tensor&) { return NoCuda(); }
absl::Status CudaGeluBackward(const Tensor&, const Tensor&, const Tensor&) { return NoCuda(); }
absl::Status CudaGeluBackwardAndColumnSums(const Tensor&, const Tensor&, int64_t, const Tensor&,
                                           const Tensor&) {
  return NoCuda();
}
absl::Status CudaLayerNormForward(const Tensor&, const Tensor&, const Tensor&, int64_t, double,
                                  const Tensor&, const Tensor&, const Tensor&) {
  return NoCuda();
}
absl::Status CudaLayerNormBackward(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                   const Tensor&, int64_t, const Tensor&, const Tensor&,
                                   const Tensor&, const Tensor&) {
  return NoCuda();
}
absl::Status CudaAccumulateColumnSums(const Tensor&, int64_t, const Tensor&) { return NoCuda(); }
absl::StatusOr<Tensor> CudaRoundAndAccumulateColumnSums(const Tensor&, int64_t, const Tensor&) {
  return NoCuda();
}
absl::StatusOr<Tensor> CudaUploadIds(const std::vector<int32_t>&, Device) { return NoCuda(); }
absl::Status CudaEmbeddingForward(const Tensor&, const Tensor&, const Tensor&) { return NoCuda(); }
absl::Status CudaEmbeddingBackward(const std::vector<int32_t>&, const Tensor&, const Tensor&) {
  return NoCuda();
}
absl::Status CudaAddPositions(const Tensor&, const Tensor&) { return NoCuda(); }
absl::StatusOr<double> CudaCrossEntropyForward(const Tensor&, const Tensor&, int64_t,
                                               const Tensor&) {
  return NoCuda();
}
absl::Status CudaSliceRowMax(const Tensor&, const VocabSlice&, const Tensor&) { return NoCuda(); }
absl::Status CudaSliceSumExpAndTarget(const Tensor&, const Tensor&, const VocabSlice&,
                                      const Tensor&, const Tensor&) {
  return NoCuda();
}
absl::Status CudaSliceCrossEntropyGradient(const Tensor&, const Tensor&, const Tensor&,
                                           const VocabSlice&, double, const Tensor&) {
  return NoCuda();
}
absl::Status CudaCrossEntropyBackward(const Tensor&, const Tensor&, int64_t, double,
                                      const Tensor&) {
  return NoCuda();
}
absl::StatusOr<double> CudaCrossEntropyForwardWithGradient(const Tensor&, const Tensor&, int64_t,
                                                           double, const Tensor&) {
  return NoCuda();
}
absl::Status CudaCausalAttentionForward(const Tensor&, const AttentionDims&, const Tensor&,
                                        const Tensor&, const Tensor&) {
  return NoCuda();
}
absl::Status CudaCausalAttentionBackward(const Tensor&, const Tensor&, const Tensor&,
                                         const AttentionDims&, const Tensor&) {
  return NoCuda();
}

absl::Status CudaFlashAttentionForward(const Tensor&, const AttentionDims&, const Tensor&,
                                       const Tensor&) {
  return NoCuda();
}
absl::Status CudaCachedAttentionForward(const Tensor&, const CachedAttentionDims&, const Tensor&,
                                        const Tensor&, const Tensor&) {
  return NoCuda();
}
absl::Status CudaFlashAttentionBackward(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                        const AttentionDims&, const Tensor&) {
  return NoCuda();
}

}  // namespace usine::nn_internal
