// ExportHuggingFaceGpt2: the directory holds the model in Hugging Face's layout (prefixed
// names, Conv1D weights transposed, wte unpadded, no lm_head), which ImportHuggingFaceGpt2 reads
// back to the same logits; bf16 weights are each weight rounded; the tokenizer's files are
// copied; each bad input is an error that leaves no directory behind. HuggingFaceGpt2Config
// reads back as the model's shape.
#include "runtime/train/hf_gpt2_export.h"

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "checkpoint/safetensors_file.h"
#include "checkpoint/state_dict.h"
#include "collectives/local/local_communicator.h"
#include "runtime/core/float16.h"
#include "runtime/train/gpt_checkpoint.h"
#include "runtime/train/hf_gpt2_import.h"
#include "tests/testing/device_test.h"
#include "tests/testing/safetensors_image.h"
#include "tests/testing/small_gpt.h"

namespace usine {
namespace {

using testing::FixedLogits;
using ::testing::HasSubstr;
using testing::ReadTensor;
using testing::SmallGptConfig;

std::vector<float> Values(Gpt& model, const std::string& name) {
  StateDict state;
  EXPECT_TRUE(model.AddToStateDict(state).ok());
  return ReadTensor<float>(state.tensors().at(name).pieces.front().tensor).value();
}

class HfGpt2ExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/usine_hf_export_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    out_ = dir_ + "/hf";
    ASSERT_OK_AND_ASSIGN(model_, Gpt::Create({.config = SmallGptConfig(), .seed = 3}));
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  // The names in dir_, which must be `out_`'s alone after an export, none after a failure.
  std::vector<std::string> Entries() {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir_)) {
      names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  std::string dir_, out_;
  std::unique_ptr<Gpt> model_;
  LocalCommunicator comm_{"world"};
};

TEST_F(HfGpt2ExportTest, ImportGivesBackTheModel) {
  ASSERT_OK_AND_ASSIGN(const HfGpt2Export exported, ExportHuggingFaceGpt2(*model_, out_));
  EXPECT_EQ(exported.tensors, static_cast<int64_t>(model_->Parameters().size()));
  EXPECT_FALSE(exported.tokenizer);
  EXPECT_EQ(Entries(), std::vector<std::string>{"hf"});

  ASSERT_OK_AND_ASSIGN(const SafetensorsFile file,
                       SafetensorsFile::Open(out_ + "/model.safetensors"));
  EXPECT_EQ(file.metadata().at("format"), "pt");
  EXPECT_EQ(file.entries().count("lm_head.weight"), 0u) << "tied to wte, as save_pretrained";
  EXPECT_EQ(file.entries().at("transformer.wte.weight").shape, Shape({40, 8})) << "unpadded";
  // c_fc: usine's [32, 8] is stored [8, 32], element (i, o) at o's row i.
  EXPECT_EQ(file.entries().at("transformer.h.1.mlp.c_fc.weight").shape, Shape({8, 32}));
  ASSERT_OK_AND_ASSIGN(Tensor c_fc, file.ReadF32("transformer.h.1.mlp.c_fc.weight"));
  const std::vector<float> stored = ReadTensor<float>(c_fc).value();
  const std::vector<float> usine = Values(*model_, "h.1.mlp.c_fc.weight");
  EXPECT_EQ(stored[3 * 32 + 17], usine[17 * 8 + 3]);
  EXPECT_EQ(stored[7 * 32 + 30], usine[30 * 8 + 7]);
  int64_t bytes = 0;
  for (const auto& [name, entry] : file.entries()) {
    EXPECT_EQ(entry.dtype, "F32") << name;
    bytes += entry.bytes;
  }
  EXPECT_EQ(exported.bytes, bytes);

  ASSERT_OK(ImportHuggingFaceGpt2(out_, dir_ + "/back.h5").status());
  ASSERT_OK_AND_ASSIGN(GptCheckpoint back, LoadGptCheckpoint(comm_, dir_ + "/back.h5"));
  for (const NamedParameter& p : model_->Parameters()) {
    std::vector<float> want = Values(*model_, p.name);
    if (p.name == "wte.weight") want.resize(40 * 8);  // The padding rows stay behind.
    std::vector<float> got = Values(*back.model, p.name);
    got.resize(want.size());
    EXPECT_EQ(got, want) << p.name;
  }
  EXPECT_EQ(FixedLogits(*back.model), FixedLogits(*model_));
}

TEST_F(HfGpt2ExportTest, Bf16WeightsAreEachWeightRounded) {
  ASSERT_OK(ExportHuggingFaceGpt2(*model_, out_, {.dtype = DType::kBF16}).status());
  ASSERT_OK_AND_ASSIGN(const SafetensorsFile file,
                       SafetensorsFile::Open(out_ + "/model.safetensors"));
  EXPECT_EQ(file.entries().at("transformer.wpe.weight").dtype, "BF16");
  ASSERT_OK_AND_ASSIGN(Tensor wpe, file.ReadF32("transformer.wpe.weight"));
  const std::vector<float> exact = Values(*model_, "wpe.weight");
  const std::vector<float> got = ReadTensor<float>(wpe).value();
  ASSERT_EQ(got.size(), exact.size());
  int changed = 0;
  for (size_t i = 0; i < exact.size(); ++i) {
    EXPECT_EQ(got[i], BFloat16BitsToFloat(FloatToBFloat16Bits(exact[i]))) << i;
    changed += got[i] != exact[i];
  }
  EXPECT_GT(changed, 0) << "the weights were rounded";
}

TEST_F(HfGpt2ExportTest, TheTokenizersFilesAreCopiedUnderHuggingFacesNames) {
  testing::WriteBytes(dir_ + "/encoder.json", R"({"!": 0, "\"": 1})");
  testing::WriteBytes(dir_ + "/vocab.bpe", "#version: 0.2\nĠ t\n");
  ASSERT_OK_AND_ASSIGN(const HfGpt2Export exported,
                       ExportHuggingFaceGpt2(*model_, out_,
                                             {.encoder_json = dir_ + "/encoder.json",
                                              .vocab_bpe = dir_ + "/vocab.bpe"}));
  EXPECT_TRUE(exported.tokenizer);
  EXPECT_EQ(testing::ReadFileBytes(out_ + "/vocab.json"), R"({"!": 0, "\"": 1})");
  EXPECT_EQ(testing::ReadFileBytes(out_ + "/merges.txt"), "#version: 0.2\nĠ t\n");
}

TEST_F(HfGpt2ExportTest, EachBadInputIsAnErrorThatLeavesNothing) {
  const auto error = [&](const HfGpt2ExportOptions& options) {
    const absl::Status status = ExportHuggingFaceGpt2(*model_, out_, options).status();
    EXPECT_EQ(Entries(), std::vector<std::string>{}) << status;
    return status;
  };
  EXPECT_THAT(error({.dtype = DType::kF16}).message(), HasSubstr("f32 or bf16 weights, not f16"));
  EXPECT_THAT(error({.encoder_json = "e.json"}).message(), HasSubstr("go together"));
  const absl::Status missing =
      error({.encoder_json = dir_ + "/none.json", .vocab_bpe = dir_ + "/none.bpe"});
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.message(), HasSubstr("none.json"));

  std::filesystem::create_directories(out_);
  testing::WriteBytes(out_ + "/config.json", "mine");
  const absl::Status exists = ExportHuggingFaceGpt2(*model_, out_).status();
  EXPECT_EQ(exists.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(testing::ReadFileBytes(out_ + "/config.json"), "mine");
  EXPECT_EQ(Entries(), std::vector<std::string>{"hf"});
}

TEST(HuggingFaceGpt2Config, ReadsBackAsTheModelsShape) {
  for (const char* preset : {"gpt2", "gpt2-xl", "tiny"}) {
    ASSERT_OK_AND_ASSIGN(const GptConfig config, GptConfigNamed(preset));
    ASSERT_OK_AND_ASSIGN(const GptConfig back,
                         GptConfigFromHuggingFace(HuggingFaceGpt2Config(config, DType::kF32), "x"));
    EXPECT_EQ(back.name, preset);
    EXPECT_EQ(std::vector<int64_t>(
                  {back.vocab_size, back.block_size, back.n_layer, back.n_head, back.n_embd}),
              std::vector<int64_t>({config.vocab_size, config.block_size, config.n_layer,
                                    config.n_head, config.n_embd}));
  }
  EXPECT_THAT(HuggingFaceGpt2Config(SmallGptConfig(), DType::kBF16),
              HasSubstr(R"("torch_dtype": "bfloat16")"));
}

}  // namespace
}  // namespace usine
