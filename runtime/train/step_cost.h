// The work of one GPT training step, op by op: the FLOPs of each operation and the least bytes
// it moves to and from memory, under the names the layers mark on OpTimeline, so that a
// profiled step's time per op (`usine bench train --profile`) reads against that op's floor
// (roofline.h's FloorSeconds).
//
//   const std::vector<OpCost> ops = GptStepCost(config, {.batch = 16, .seq = 1024,
//                                                         .activation_bytes = 2});
//   const OpCost step = TotalCost(ops);  // step.flops / rate and step.bytes / bandwidth
//
// The step is one device's (no tensor or data parallelism, no recompute), as `usine bench
// train` and the Trainer run it: zero_grad, forward, the loss with the logits' gradient,
// backward, clip, AdamW. Each layer's entries are summed over the layers.
//
// FLOPs: 2 per parameter a token meets in the forward pass and 4 in the backward pass (a
// product's weight and bias, a LayerNorm's scale and shift, the output projection's table),
// flops.h's 6 N; and attention's scores and weighted sums over the (query, key) pairs the
// causal mask keeps, T (T + 1) / 2 a sequence: 4 C a pair forward, 8 C backward. A kernel that
// skips the hidden pairs (the flash kernels) needs no more. So TotalCost(ops).flops is tokens x
// (6 N + 6 L C (T + 1)), not MFU's 6 N + 12 L C T, which counts the whole T x T square.
//
// Bytes follow three rules, which make them a floor for this sequence of ops:
//  - an op reads each of its inputs once and writes each of its outputs once; nothing stays
//    in a cache from one op to the next;
//  - the residual stream and its gradient, the parameters, their gradients and AdamW's moments
//    are f32; every other activation and activation gradient, and the weights as products read
//    them, take `activation_bytes` each (2 for bf16 products), and with fewer than 4 AdamW also
//    writes the parameters in that precision for the next step's products;
//  - gradients accumulate: zero_grad writes them, and each op that adds to one reads and
//    writes it.
// attn.core's bytes are a fused kernel's (the T x T scores never reach memory), so the unfused
// attention runs above its floor by design. Terms of order C or B T are left out of the bytes
// (biases, LayerNorm parameters, per-row statistics, token ids).
#ifndef USINE_RUNTIME_TRAIN_STEP_COST_H_
#define USINE_RUNTIME_TRAIN_STEP_COST_H_

#include <cstdint>
#include <vector>

#include "runtime/nn/gpt_config.h"
#include "runtime/train/roofline.h"

namespace usine {

struct StepShape {
  int64_t batch = 1;         // sequences. Default: 1.
  int64_t seq = 1;           // tokens per sequence, at most the config's block_size. Default: 1.
  int activation_bytes = 4;  // per activation element: 4 (f32) or 2 (bf16). Default: 4.
};

// One entry per op name, in the order a step first marks it.
// REQUIRES: config.Validate() is OK; 1 <= shape.seq <= config.block_size; shape.batch >= 1.
std::vector<OpCost> GptStepCost(const GptConfig& config, const StepShape& shape);

// The sum of `ops`, named "step".
OpCost TotalCost(const std::vector<OpCost>& ops);

}  // namespace usine

#endif  // USINE_RUNTIME_TRAIN_STEP_COST_H_
