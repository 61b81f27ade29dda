// The names the Trainer gives its checkpoints' metadata and model tensors
// (docs/checkpoint-format.md), shared with the readers of those checkpoints
// (gpt_checkpoint.h).
//
//   state.SetInt(checkpoint_keys::kStep, step);
//   ASSIGN_OR_RETURN(std::string json, state.GetJson(checkpoint_keys::kModelConfig));
#ifndef USINE_RUNTIME_TRAIN_CHECKPOINT_KEYS_H_
#define USINE_RUNTIME_TRAIN_CHECKPOINT_KEYS_H_

namespace usine::checkpoint_keys {

inline constexpr char kStep[] = "step";                       // int64: steps done.
inline constexpr char kTokensSeen[] = "tokens_seen";          // int64.
inline constexpr char kSkippedSteps[] = "skipped_steps";      // int64.
inline constexpr char kSeed[] = "seed";                       // int64: the run's seed.
inline constexpr char kRunConfig[] = "run_config";            // string: the run's TOML.
inline constexpr char kModelConfig[] = "model_config";        // json: e.g. GptConfigToJson's.
inline constexpr char kParallelLayout[] = "parallel_layout";  // json: {"tp": .., "dp": ..}.
inline constexpr char kDataPosition[] = "data_position";      // json: DataStreamState's.
inline constexpr char kImportedFrom[] = "imported_from";      // string: hf_gpt2_import.h's.
// Before the model's parameter names (Module::AddToStateDict); "optim/" is the optimizer's.
inline constexpr char kModelPrefix[] = "model/";

}  // namespace usine::checkpoint_keys

#endif  // USINE_RUNTIME_TRAIN_CHECKPOINT_KEYS_H_
