// One process (POSIX I/O): round trips, and files that are damaged, foreign or not what the
// reader expects.
#include "checkpoint/checkpoint_file.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <hdf5.h>
#include <unistd.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "collectives/local/local_communicator.h"
#include "tests/checkpoint/checkpoint_test_util.h"
#include "tests/testing/device_test.h"

namespace usine {
namespace {

using ::testing::HasSubstr;
using usine::testing::CheckModel;
using usine::testing::Fill;
using usine::testing::MakeModel;

class CheckpointFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/usine_ckpt_file_XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    path_ = dir_ + "/c.h5";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void WriteModel() {
    ASSERT_OK_AND_ASSIGN(StateDict state, MakeModel(0, 1, Fill::kValues));
    ASSERT_OK(WriteCheckpointFile(path_, state, comm_));
  }
  absl::Status ReadModel(int tp_rank = 0, int tp_size = 1) {
    ASSIGN_OR_RETURN(StateDict state, MakeModel(tp_rank, tp_size, Fill::kSentinel));
    RETURN_IF_ERROR(ReadCheckpointFile(path_, state, comm_));
    const std::string wrong = CheckModel(state);
    if (!wrong.empty()) return absl::InternalError(wrong);
    return absl::OkStatus();
  }
  // Opens the written file with HDF5 for a change that makes it foreign.
  hid_t OpenForEdit() { return H5Fopen(path_.c_str(), H5F_ACC_RDWR, H5P_DEFAULT); }
  // Overwrites the byte at `at` of `dataset`'s data in the written file with 0x5a.
  void DamageByte(const char* dataset, uint64_t at) {
    hid_t file = H5Fopen(path_.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(file, dataset, H5P_DEFAULT);
    const haddr_t offset = H5Dget_offset(d);
    H5Dclose(d);
    H5Fclose(file);
    ASSERT_NE(offset, HADDR_UNDEF);
    std::fstream f(path_, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(offset + at));
    f.put('\x5a');
  }

  LocalCommunicator comm_{"test"};
  std::string dir_, path_;
};

TEST_F(CheckpointFileTest, RoundTripsEveryDTypeShapeAndMetadataKind) {
  WriteModel();
  ASSERT_OK_AND_ASSIGN(StateDict state, MakeModel(0, 1, Fill::kSentinel));
  ASSERT_OK(ReadCheckpointFile(path_, state, comm_));
  EXPECT_EQ(CheckModel(state), "");
  ASSERT_OK_AND_ASSIGN(StateDict want, MakeModel(0, 1, Fill::kValues));
  EXPECT_EQ(state.metadata(), want.metadata());
  EXPECT_EQ(*state.GetInt("step"), 1200);
  EXPECT_EQ(*state.GetJson("model_config"), R"({"layers": 2, "d_model": 12})");
}

TEST_F(CheckpointFileTest, ReadsOnePieceOfEachTensor) {
  WriteModel();
  EXPECT_OK(ReadModel(1, 2));
  EXPECT_OK(ReadModel(3, 4));
}

// What a reader that wants only the model of a model-and-optimizer checkpoint does.
TEST_F(CheckpointFileTest, ReadsOnlyTheTensorsAskedForAndAllTheMetadata) {
  WriteModel();
  ASSERT_OK_AND_ASSIGN(StateDict want, MakeModel(0, 1, Fill::kValues));
  ASSERT_OK_AND_ASSIGN(StateDict sentinel, MakeModel(0, 1, Fill::kSentinel));
  StateDict some;
  for (const char* name : {"w_row", "blocks/0/ln", "bias"}) {
    ASSERT_OK(some.AddTensor(name, sentinel.tensors().at(name).pieces[0].tensor));
  }
  ASSERT_OK(ReadCheckpointFile(path_, some, comm_));
  ASSERT_EQ(some.tensors().size(), 3u);
  for (const auto& [name, entry] : some.tensors()) {
    const Tensor& got = entry.pieces[0].tensor;
    const Tensor& expected = want.tensors().at(name).pieces[0].tensor;
    EXPECT_EQ(std::memcmp(got.raw_data(), expected.raw_data(), got.nbytes()), 0) << name;
  }
  EXPECT_EQ(some.metadata(), want.metadata());
  // No tensors at all: the metadata alone.
  StateDict none;
  ASSERT_OK(ReadCheckpointFile(path_, none, comm_));
  EXPECT_TRUE(none.tensors().empty());
  EXPECT_EQ(none.metadata(), want.metadata());
}

TEST_F(CheckpointFileTest, WrongShapeOrDTypeOrMissingTensorNamesTheDataset) {
  WriteModel();
  StateDict wrong_shape, wrong_dtype, missing;
  ASSERT_OK(wrong_shape.AddTensor("w_col", *Tensor::Empty({8, 13}, DType::kF32)));
  ASSERT_OK(wrong_dtype.AddTensor("w_row", *Tensor::Empty({12, 6}, DType::kF32)));
  ASSERT_OK(missing.AddTensor("nope", *Tensor::Empty({2}, DType::kF32)));
  absl::Status s = ReadCheckpointFile(path_, wrong_shape, comm_);
  EXPECT_THAT(s.message(), HasSubstr("/tensors/w_col is f32[8, 12] but rank 0 expects f32[8, 13]"));
  s = ReadCheckpointFile(path_, wrong_dtype, comm_);
  EXPECT_THAT(s.message(), HasSubstr("/tensors/w_row is bf16[12, 6] but rank 0 expects f32"));
  s = ReadCheckpointFile(path_, missing, comm_);
  EXPECT_TRUE(absl::IsNotFound(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("no tensor 'nope'"));
}

TEST_F(CheckpointFileTest, DamagedTensorBytesAreDataLossNamingTheDataset) {
  WriteModel();
  DamageByte("/tensors/w_row", 17);
  const absl::Status s = ReadModel();
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("/tensors/w_row has CRC-32C"));
}

// A tensor of several read slabs (4 MiB of whole rows each), read whole, in column halves,
// in row thirds and in small row pieces: the values exactly, and a damaged byte found in the
// last slab, whether its checksum was handed to the second thread (slabs from 256 KiB on) or
// computed by the reading one.
TEST_F(CheckpointFileTest, LargeTensorsAreCheckedSlabBySlab) {
  const int64_t rows = 1200, cols = 2048;  // 9.8 MB: slabs of 512, 512 and 176 rows.
  ASSERT_OK_AND_ASSIGN(Tensor whole, Tensor::Empty({rows, cols}, DType::kF32));
  ASSERT_OK_AND_ASSIGN(absl::Span<float> values, whole.host_span<float>());
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i % 100003) * 0.5f;
  {
    StateDict state;
    ASSERT_OK(state.AddTensor("big", whole));
    ASSERT_OK(WriteCheckpointFile(path_, state, comm_));
  }
  // Boxes of `extent` that tile the tensor, filled with a sentinel.
  auto tiled = [&](int64_t box_rows, int64_t box_cols) -> absl::StatusOr<StateDict> {
    StateDict state;
    for (int64_t r = 0; r < rows; r += box_rows) {
      for (int64_t c = 0; c < cols; c += box_cols) {
        ASSIGN_OR_RETURN(Tensor piece, Tensor::Empty({box_rows, box_cols}, DType::kF32));
        ASSIGN_OR_RETURN(absl::Span<float> v, piece.host_span<float>());
        std::fill(v.begin(), v.end(), -1.0f);
        RETURN_IF_ERROR(state.AddShard("big", piece, Shape{rows, cols}, {r, c}));
      }
    }
    return state;
  };
  // Whole; column halves (slabs of 1024 and 176 rows); row thirds; pieces of 20 rows (160 KiB).
  const std::vector<std::pair<int64_t, int64_t>> layouts = {
      {rows, cols}, {rows, cols / 2}, {rows / 3, cols}, {20, cols}};
  for (const auto& [box_rows, box_cols] : layouts) {
    ASSERT_OK_AND_ASSIGN(StateDict state, tiled(box_rows, box_cols));
    const absl::Status read = ReadCheckpointFile(path_, state, comm_);
    ASSERT_TRUE(read.ok()) << box_rows << "x" << box_cols << ": " << read;
    for (const TensorPiece& piece : state.tensors().at("big").pieces) {
      ASSERT_OK_AND_ASSIGN(absl::Span<const float> got, piece.tensor.host_span<const float>());
      for (int64_t r = 0; r < box_rows; ++r) {
        const float* want = values.data() + (piece.offset[0] + r) * cols + piece.offset[1];
        ASSERT_EQ(std::memcmp(got.data() + r * box_cols, want, box_cols * sizeof(float)), 0)
            << box_rows << "x" << box_cols << " at " << piece.offset[0] << "," << piece.offset[1];
      }
    }
  }
  DamageByte("/tensors/big", (rows - 3) * cols * 4 + cols * 2 + 1);
  for (const auto& [box_rows, box_cols] : layouts) {
    ASSERT_OK_AND_ASSIGN(StateDict state, tiled(box_rows, box_cols));
    const absl::Status s = ReadCheckpointFile(path_, state, comm_);
    EXPECT_TRUE(absl::IsDataLoss(s)) << box_rows << "x" << box_cols << ": " << s;
    EXPECT_THAT(s.message(), HasSubstr("/tensors/big has CRC-32C"));
  }
}

TEST_F(CheckpointFileTest, TruncatedFilesAndOtherFilesAreErrors) {
  WriteModel();
  const auto size = std::filesystem::file_size(path_);
  for (auto keep : {size / 2, size - 1, uintmax_t{100}, uintmax_t{5}, uintmax_t{0}}) {
    WriteModel();
    std::filesystem::resize_file(path_, keep);
    EXPECT_FALSE(ReadModel().ok()) << "kept " << keep << " bytes";
  }
  std::ofstream(path_) << "{\"not\": \"hdf5\"}";
  EXPECT_THAT(ReadModel().message(), HasSubstr("not an HDF5 file"));
  // HDF5's default (1.0) format, whose metadata has no checksums, is refused before parsing.
  hid_t file = H5Fcreate(path_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  H5Fclose(file);
  EXPECT_THAT(ReadModel().message(), HasSubstr("superblock of version 0"));
  // Valid HDF5 of the right version that is not a checkpoint.
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
  file = H5Fcreate(path_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  H5Pclose(fapl);
  H5Fclose(file);
  EXPECT_THAT(ReadModel().message(), HasSubstr("not a usine checkpoint"));
  StateDict nothing;
  EXPECT_TRUE(absl::IsNotFound(ReadCheckpointFile(dir_ + "/missing.h5", nothing, comm_)));
}

TEST_F(CheckpointFileTest, ExternalAndSoftLinksAreRefused) {
  WriteModel();
  hid_t file = OpenForEdit();
  ASSERT_GE(H5Ldelete(file, "/tensors/w_col", H5P_DEFAULT), 0);
  ASSERT_GE(
      H5Lcreate_external("/etc/other.h5", "/x", file, "/tensors/w_col", H5P_DEFAULT, H5P_DEFAULT),
      0);
  ASSERT_GE(H5Ldelete(file, "/tensors/bias", H5P_DEFAULT), 0);
  ASSERT_GE(H5Lcreate_soft("/tensors/scale", file, "/tensors/bias", H5P_DEFAULT, H5P_DEFAULT), 0);
  H5Fclose(file);
  StateDict col, bias;
  ASSERT_OK(col.AddTensor("w_col", *Tensor::Empty({8, 12}, DType::kF32)));
  ASSERT_OK(bias.AddTensor("bias", *Tensor::Empty({5}, DType::kI64)));
  EXPECT_THAT(ReadCheckpointFile(path_, col, comm_).message(),
              HasSubstr("/tensors/w_col is a soft or external link (refused)"));
  EXPECT_THAT(ReadCheckpointFile(path_, bias, comm_).message(),
              HasSubstr("/tensors/bias is a soft or external link (refused)"));
}

TEST_F(CheckpointFileTest, FilteredDatasetsAreRefused) {
  WriteModel();
  hid_t file = OpenForEdit();
  ASSERT_GE(H5Ldelete(file, "/tensors/bias", H5P_DEFAULT), 0);
  const hsize_t dims[1] = {5};
  hid_t space = H5Screate_simple(1, dims, nullptr);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(dcpl, 1, dims);
  H5Pset_deflate(dcpl, 6);
  hid_t d = H5Dcreate2(file, "/tensors/bias", H5T_STD_I64LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  ASSERT_GE(d, 0);
  H5Dclose(d);
  H5Pclose(dcpl);
  H5Sclose(space);
  H5Fclose(file);
  StateDict bias;
  ASSERT_OK(bias.AddTensor("bias", *Tensor::Empty({5}, DType::kI64)));
  EXPECT_THAT(ReadCheckpointFile(path_, bias, comm_).message(),
              HasSubstr("/tensors/bias has filters"));
}

// One rank holding several boxes of a tensor (each block of q|k|v in MakeModel) writes each,
// and reads back any set of boxes.
TEST_F(CheckpointFileTest, SeveralBoxesOfATensorOnOneRankRoundTrip) {
  ASSERT_OK_AND_ASSIGN(StateDict state, MakeModel(0, 1, Fill::kValues));
  ASSERT_EQ(state.tensors().at("qkv").pieces.size(), 3u);
  ASSERT_EQ(state.tensors().at("qkv_cols").pieces.size(), 3u);
  ASSERT_OK(WriteCheckpointFile(path_, state, comm_));
  EXPECT_OK(ReadModel());
  EXPECT_OK(ReadModel(1, 4));  // Other boxes: a quarter of each block.
}

// Version 1 stored optimizer moments flattened: such a file still loads, and a moment read
// in its parameter's shape is an error that says why. A version from the future is refused.
TEST_F(CheckpointFileTest, VersionOneFilesLoadAndNameTheirFlatMoments) {
  StateDict old;
  ASSERT_OK(old.AddTensor("model/w", *Tensor::Empty({2, 3}, DType::kF32)));
  ASSERT_OK(old.AddTensor("optim/exp_avg/w", *Tensor::Empty({6}, DType::kF32)));
  ASSERT_OK(WriteCheckpointFile(path_, old, comm_));
  auto set_version = [&](int64_t version) {
    hid_t file = OpenForEdit();
    hid_t attribute = H5Aopen(file, "format_version", H5P_DEFAULT);
    ASSERT_GE(attribute, 0);
    ASSERT_GE(H5Awrite(attribute, H5T_NATIVE_INT64, &version), 0);
    H5Aclose(attribute);
    H5Fclose(file);
  };
  set_version(1);
  StateDict weights, moments;
  ASSERT_OK(weights.AddTensor("model/w", *Tensor::Empty({2, 3}, DType::kF32)));
  EXPECT_OK(ReadCheckpointFile(path_, weights, comm_));
  ASSERT_OK(moments.AddTensor("optim/exp_avg/w", *Tensor::Empty({2, 3}, DType::kF32)));
  EXPECT_THAT(ReadCheckpointFile(path_, moments, comm_).message(),
              HasSubstr("is f32[6] but rank 0 expects f32[2, 3] (the file has format version 1, "
                        "whose optimizer moments are flattened"));
  set_version(3);
  EXPECT_THAT(ReadCheckpointFile(path_, weights, comm_).message(),
              HasSubstr("has checkpoint format version 3; this build reads 1 to 2"));
}

TEST_F(CheckpointFileTest, PiecesThatDoNotTileATensorAreRefusedBeforeWriting) {
  StateDict state;
  ASSERT_OK(state.AddShard("w", *Tensor::Empty({2, 3}, DType::kF32), Shape{4, 3}, {0, 0}));
  const absl::Status s = WriteCheckpointFile(path_, state, comm_);
  EXPECT_THAT(s.message(), HasSubstr("tensor 'w': the ranks' pieces do not cover [4, 3]"));
}

}  // namespace
}  // namespace usine
