// ImportHuggingFaceGpt2: a GPT-2 laid out as Hugging Face stores it (Conv1D weights [in, out],
// wte unpadded, mask buffers, a tied lm_head, with or without the "transformer." prefix) becomes
// a checkpoint whose model is the one those weights came from, to the bit; and every mismatch
// is an error that names the tensor and writes nothing. GptConfigFromHuggingFace's mapping.
#include "runtime/train/hf_gpt2_import.h"

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "checkpoint/state_dict.h"
#include "collectives/local/local_communicator.h"
#include "runtime/train/gpt_checkpoint.h"
#include "tests/testing/device_test.h"
#include "tests/testing/safetensors_image.h"
#include "tests/testing/small_gpt.h"

namespace usine {
namespace {

using ::testing::ElementsAre;
using testing::FixedLogits;
using ::testing::HasSubstr;
using testing::ReadTensor;
using testing::SafetensorsEntry;
using testing::SmallGptConfig;

constexpr char kSmallConfigJson[] =
    R"({"model_type": "gpt2", "vocab_size": 40, "n_positions": 8, "n_ctx": 8, "n_embd": 8,
        "n_layer": 2, "n_head": 2, "n_inner": null, "activation_function": "gelu_new",
        "layer_norm_epsilon": 1e-05, "tie_word_embeddings": true, "scale_attn_weights": true})";

bool IsConv1d(const std::string& name) {
  for (const char* s :
       {"attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight"}) {
    if (absl::EndsWith(name, s)) return true;
  }
  return false;
}

// `model`'s weights as Hugging Face lays them out, each name prefixed by `prefix`, then a mask
// buffer per block and the tied lm_head.
std::vector<SafetensorsEntry> HfEntries(Gpt& model, const std::string& prefix) {
  StateDict state;
  EXPECT_TRUE(model.AddToStateDict(state).ok());
  std::vector<SafetensorsEntry> entries;
  std::vector<float> wte;
  for (const auto& [name, entry] : state.tensors()) {
    std::vector<float> values = ReadTensor<float>(entry.pieces.front().tensor).value();
    std::vector<int64_t> shape(entry.global_shape.dims().begin(), entry.global_shape.dims().end());
    if (IsConv1d(name)) {
      std::vector<float> t(values.size());
      for (int64_t r = 0; r < shape[0]; ++r) {
        for (int64_t c = 0; c < shape[1]; ++c) t[c * shape[0] + r] = values[r * shape[1] + c];
      }
      values = t;
      std::swap(shape[0], shape[1]);
    }
    if (name == "wte.weight") {
      shape[0] = SmallGptConfig().vocab_size;
      values.resize(shape[0] * shape[1]);
      wte = values;
    }
    entries.push_back({prefix + name, "F32", shape, testing::F32Bytes(values)});
  }
  for (int layer = 0; layer < 2; ++layer) {
    entries.push_back({absl::StrCat(prefix, "h.", layer, ".attn.bias"),
                       "F32",
                       {1, 1, 2, 2},
                       testing::F32Bytes({1, 0, 1, 1})});
  }
  entries.push_back({"lm_head.weight", "F32", {40, 8}, testing::F32Bytes(wte)});
  return entries;
}

class HfGpt2ImportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/usine_hf_import_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    model_dir_ = dir_ + "/hf";
    std::filesystem::create_directories(model_dir_);
    out_ = dir_ + "/imported.h5";
    ASSERT_OK_AND_ASSIGN(source_, Gpt::Create({.config = SmallGptConfig(), .seed = 3}));
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void WriteModel(const std::vector<SafetensorsEntry>& entries,
                  const std::string& config = kSmallConfigJson) {
    testing::WriteBytes(model_dir_ + "/config.json", config);
    testing::WriteBytes(model_dir_ + "/model.safetensors", testing::SafetensorsImage(entries));
  }
  // The import's error after `edit` changed the source's entries; nothing is written.
  absl::Status ErrorAfter(const std::function<void(std::vector<SafetensorsEntry>&)>& edit) {
    std::vector<SafetensorsEntry> entries = HfEntries(*source_, "");
    edit(entries);
    WriteModel(entries);
    absl::StatusOr<HfGpt2Import> imported = ImportHuggingFaceGpt2(model_dir_, out_);
    EXPECT_FALSE(imported.ok());
    EXPECT_FALSE(std::filesystem::exists(out_));
    EXPECT_FALSE(std::filesystem::exists(out_ + ".tmp"));
    return imported.status();
  }

  std::string dir_, model_dir_, out_;
  std::unique_ptr<Gpt> source_;
  LocalCommunicator comm_{"world"};
};

TEST_F(HfGpt2ImportTest, TheImportedModelIsTheModelTheWeightsCameFrom) {
  for (const std::string prefix : {"", "transformer."}) {
    SCOPED_TRACE(prefix);
    std::filesystem::remove(out_);
    WriteModel(HfEntries(*source_, prefix));
    ASSERT_OK_AND_ASSIGN(HfGpt2Import imported, ImportHuggingFaceGpt2(model_dir_, out_));
    EXPECT_EQ(imported.config.name, "hf-gpt2");
    EXPECT_EQ(imported.tensors, static_cast<int64_t>(source_->Parameters().size()));
    EXPECT_THAT(imported.skipped,
                ElementsAre(prefix + "h.0.attn.bias", prefix + "h.1.attn.bias", "lm_head.weight"));
    ASSERT_OK_AND_ASSIGN(GptCheckpoint loaded, LoadGptCheckpoint(comm_, out_));
    EXPECT_EQ(loaded.step, 0);
    const GptConfig& c = loaded.model->config();
    EXPECT_EQ(std::vector<int64_t>({c.vocab_size, c.block_size, c.n_layer, c.n_head, c.n_embd}),
              std::vector<int64_t>({40, 8, 2, 2, 8}));
    StateDict want, got;
    ASSERT_OK(source_->AddToStateDict(want));
    ASSERT_OK(loaded.model->AddToStateDict(got));
    for (const auto& [name, entry] : want.tensors()) {
      std::vector<float> expected = ReadTensor<float>(entry.pieces.front().tensor).value();
      if (name == "wte.weight") {  // Padding rows: zero in the import, drawn in the source.
        std::fill(expected.begin() + 40 * 8, expected.end(), 0.0f);
      }
      EXPECT_EQ(ReadTensor<float>(got.tensors().at(name).pieces.front().tensor).value(), expected)
          << name;
    }
    EXPECT_EQ(FixedLogits(*loaded.model), FixedLogits(*source_));
  }
}

TEST_F(HfGpt2ImportTest, HalfPrecisionWeightsAreWidened) {
  std::vector<SafetensorsEntry> entries = HfEntries(*source_, "");
  for (SafetensorsEntry& e : entries) {
    if (e.name != "wpe.weight") continue;
    std::vector<uint16_t> halves;
    for (size_t i = 0; i < e.bytes.size() / 4; ++i) {
      halves.push_back(FloatToBFloat16Bits(0.25f * static_cast<float>(i)));
    }
    e.dtype = "BF16";
    e.bytes = testing::ElementBytes(halves);
  }
  WriteModel(entries);
  ASSERT_OK(ImportHuggingFaceGpt2(model_dir_, out_).status());
  ASSERT_OK_AND_ASSIGN(GptCheckpoint loaded, LoadGptCheckpoint(comm_, out_));
  StateDict got;
  ASSERT_OK(loaded.model->AddToStateDict(got));
  const std::vector<float> wpe =
      ReadTensor<float>(got.tensors().at("wpe.weight").pieces[0].tensor).value();
  ASSERT_EQ(wpe.size(), 64u);
  EXPECT_EQ(wpe[0], 0.0f);
  EXPECT_EQ(wpe[63], 15.75f);
}

TEST_F(HfGpt2ImportTest, EachMismatchNamesTheTensorAndWritesNothing) {
  const auto drop = [](const std::string& name) {
    return [name](std::vector<SafetensorsEntry>& entries) {
      std::erase_if(entries, [&](const SafetensorsEntry& e) { return e.name == name; });
    };
  };
  EXPECT_THAT(ErrorAfter(drop("ln_f.bias")).message(), HasSubstr("no tensor 'ln_f.bias'"));
  EXPECT_THAT(ErrorAfter([](auto& entries) {
                for (SafetensorsEntry& e : entries) {
                  if (e.name == "h.1.attn.c_attn.weight") e.shape = {24, 8};  // usine's layout
                }
              }).message(),
              HasSubstr("'h.1.attn.c_attn.weight' is [24, 8]; the config makes it [8, 24]"));
  EXPECT_THAT(ErrorAfter([](auto& entries) {
                entries.back().bytes = testing::F32Bytes(std::vector<float>(320, 0.5f));
              }).message(),
              HasSubstr("'lm_head.weight' differs from wte.weight"));
  EXPECT_THAT(ErrorAfter([](auto& entries) {
                entries.push_back({"h.0.attn.rotary", "F32", {1}, testing::F32Bytes({1})});
              }).message(),
              HasSubstr("'h.0.attn.rotary' is not one of GPT-2's"));
  EXPECT_THAT(
      ErrorAfter([](auto& entries) {
        entries.push_back(
            {"transformer.ln_f.bias", "F32", {8}, testing::F32Bytes(std::vector<float>(8, 0.0f))});
      }).message(),
      HasSubstr("'ln_f.bias' is there with and without 'transformer.'"));
}

TEST_F(HfGpt2ImportTest, RefusesAnExistingOutputAndMissingFiles) {
  WriteModel(HfEntries(*source_, ""));
  testing::WriteBytes(out_, "precious");
  EXPECT_EQ(ImportHuggingFaceGpt2(model_dir_, out_).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(std::filesystem::remove(out_));

  std::filesystem::remove(model_dir_ + "/config.json");
  absl::Status error = ImportHuggingFaceGpt2(model_dir_, out_).status();
  EXPECT_EQ(error.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(error.message(), HasSubstr("config.json does not exist"));

  std::filesystem::remove(model_dir_ + "/model.safetensors");
  testing::WriteBytes(model_dir_ + "/pytorch_model.bin", "pickle");
  error = ImportHuggingFaceGpt2(model_dir_, out_).status();
  EXPECT_EQ(error.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(error.message(), HasSubstr("scripts/torch_to_safetensors.py"));
  EXPECT_FALSE(std::filesystem::exists(out_));
}

TEST(GptConfigFromHuggingFace, TakesGpt2sDefaultsAndNamesThePreset) {
  ASSERT_OK_AND_ASSIGN(GptConfig config, GptConfigFromHuggingFace("{}", "config.json"));
  EXPECT_EQ(config.name, "gpt2");
  ASSERT_OK_AND_ASSIGN(
      config, GptConfigFromHuggingFace(R"({"n_layer": 24, "n_head": 16, "n_embd": 1024})", "c"));
  EXPECT_EQ(config.name, "gpt2-medium");
  ASSERT_OK_AND_ASSIGN(config, GptConfigFromHuggingFace(kSmallConfigJson, "c"));
  EXPECT_EQ(config.name, "hf-gpt2");
  EXPECT_EQ(config.padded_vocab(), 128);
}

TEST(GptConfigFromHuggingFace, RefusesWhatUsinesGpt2DoesNotCompute) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"[1]", "not a JSON object"},
      {"{", "not JSON"},
      {R"({"n_layer": 0})", "n_layer must be a positive integer"},
      {R"({"n_embd": "768"})", "n_embd must be a positive integer"},
      {R"({"model_type": "llama"})", "model_type is \"llama\""},
      {R"({"activation_function": "relu"})", "activation_function is \"relu\""},
      {R"({"layer_norm_epsilon": 1e-06})", "layer_norm_epsilon is 1e-06"},
      {R"({"n_inner": 1000})", "n_inner is 1000"},
      {R"({"tie_word_embeddings": false})", "tie_word_embeddings is false"},
      {R"({"scale_attn_by_inverse_layer_idx": true})", "scale_attn_by_inverse_layer_idx"},
      {R"({"n_embd": 100, "n_head": 12})", "n_head"},
  };
  for (const auto& [json, message] : cases) {
    const absl::Status error = GptConfigFromHuggingFace(json, "hf/config.json").status();
    EXPECT_EQ(error.code(), absl::StatusCode::kInvalidArgument) << json;
    EXPECT_THAT(error.message(), HasSubstr(message)) << json;
  }
  EXPECT_OK(GptConfigFromHuggingFace(R"({"activation_function": "gelu_pytorch_tanh",
                                          "n_inner": 3072})",
                                     "c")
                .status());
}

}  // namespace
}  // namespace usine
