#include "runtime/train/step_cost.h"

#include <algorithm>
#include <string>

#include "runtime/train/flops.h"

namespace usine {

std::vector<OpCost> GptStepCost(const GptConfig& config, const StepShape& shape) {
  const auto n = static_cast<double>(shape.batch * shape.seq);  // tokens
  const auto t = static_cast<double>(shape.seq);
  const auto c = static_cast<double>(config.n_embd);
  const auto v = static_cast<double>(config.padded_vocab());
  const auto layers = static_cast<double>(config.n_layer);
  const auto a = static_cast<double>(shape.activation_bytes);
  const double f32 = 4;  // bytes per f32 element
  const double parameters = static_cast<double>(MatmulParameterCount(config)) +
                            static_cast<double>(config.block_size) * c;  // with wpe
  const double nc = n * c;
  const double cc = c * c;
  const double ln_parameters = 2 * c;

  std::vector<OpCost> ops;
  // `count` times an op of `flops` and `bytes`; a product of `weights` parameters (weight and
  // bias) that tokens meet has 2 n weights FLOPs forward and 4 n weights backward.
  const auto add = [&](const std::string& name, double count, double flops, double bytes) {
    ops.push_back({name, count * flops, count * bytes});
  };
  const auto forward = [&](double weights) { return 2 * n * weights; };
  const auto backward = [&](double weights) { return 4 * n * weights; };

  add("zero_grad", 1, 0, parameters * f32);
  // Reads the rows of wte and wpe that the tokens pick, writes the residual stream.
  add("embed forward", 1, 0, std::min(n, v) * c * f32 + t * c * f32 + nc * f32);
  // A block: the residual stream x (f32) through ln_1, attention, ln_2 and the MLP.
  add("ln_1 forward", layers, forward(ln_parameters), nc * (f32 + a));
  add("attn.c_attn forward", layers, forward(3 * cc + 3 * c), a * (nc + 3 * cc + 3 * nc));
  add("attn.core forward", layers, 2 * n * (t + 1) * c, a * (3 * nc + nc));
  // Each c_proj adds its output to the residual stream in its product: reads the stream, writes
  // the sum (f32).
  add("attn.c_proj forward", layers, forward(cc + c), a * (nc + cc) + 2 * nc * f32);
  add("ln_2 forward", layers, forward(ln_parameters), nc * (f32 + a));
  // Writes GELU's input (its backward pass reads it) and its output.
  add("mlp.c_fc+gelu forward", layers, forward(4 * cc + 4 * c), a * (nc + 4 * cc + 8 * nc));
  add("mlp.c_proj forward", layers, forward(4 * cc + c), a * (4 * nc + 4 * cc) + 2 * nc * f32);
  add("ln_f forward", 1, forward(ln_parameters), nc * (f32 + a));
  add("lm_head forward", 1, forward(v * c), a * (nc + v * c + n * v));
  // Reads the logits, writes their gradient.
  add("cross_entropy forward and backward", 1, 0, 2 * n * v * a);
  // Reads the logits' gradient, the hidden states and the table; writes the hidden states'
  // gradient; adds to the table's.
  add("lm_head backward", 1, backward(v * c), a * (n * v + nc + v * c + nc) + 2 * v * c * f32);
  add("ln_f backward", 1, backward(ln_parameters), nc * f32 + nc * a + nc * f32);
  // Reads the residual gradient, the weight, GELU's output and GELU's input; writes the gradient
  // of GELU's input (its product applies GELU's derivative).
  add("mlp.c_proj+gelu backward", layers, backward(4 * cc + c),
      nc * f32 + a * (4 * cc + 4 * nc + 4 * nc + 4 * nc) + 2 * 4 * cc * f32);
  // Reads that gradient, ln_2's output and the weight; writes ln_2's output's gradient.
  add("mlp.c_fc backward", layers, backward(4 * cc + 4 * c),
      a * (4 * nc + nc + 4 * cc + nc) + 2 * 4 * cc * f32);
  // Reads the residual stream, the branch's gradient and the skip's; writes their sum's.
  add("ln_2 backward", layers, backward(ln_parameters), nc * f32 + nc * a + nc * f32 + nc * f32);
  add("attn.c_proj backward", layers, backward(cc + c),
      nc * f32 + a * (cc + nc + nc) + 2 * cc * f32);
  // Reads q, k, v, the output and its gradient; writes q's, k's and v's.
  add("attn.core backward", layers, 4 * n * (t + 1) * c, a * (4 * nc + nc + 3 * nc));
  add("attn.c_attn backward", layers, backward(3 * cc + 3 * c),
      a * (3 * nc + nc + 3 * cc + nc) + 2 * 3 * cc * f32);
  add("ln_1 backward", layers, backward(ln_parameters), nc * f32 + nc * a + nc * f32 + nc * f32);
  // Reads the stream's gradient; adds to the picked rows of wte's gradient and to wpe's.
  add("embed backward", 1, 0, nc * f32 + 2 * std::min(n, v) * c * f32 + 2 * t * c * f32);
  add("clip", 1, 0, parameters * f32);  // The norm: the gradients read once.
  // Reads parameters, gradients and both moments; writes parameters and moments (and the
  // products' copy of the parameters).
  add("adamw", 1, 0, parameters * (7 * f32 + (a < f32 ? a : 0)));
  return ops;
}

OpCost TotalCost(const std::vector<OpCost>& ops) {
  OpCost total{.name = "step"};
  for (const OpCost& op : ops) {
    total.flops += op.flops;
    total.bytes += op.bytes;
  }
  return total;
}

}  // namespace usine
