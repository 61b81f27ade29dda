#include "runtime/core/hdf5_status.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "tests/testing/device_test.h"

namespace usine {
namespace {

using ::testing::HasSubstr;

TEST(Hdf5Status, CarriesTheCallTheLocationAndTheErrorStack) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // Our status carries the stack instead.
  const absl::StatusOr<hid_t> file =
      USINE_HDF5_ID(H5Fopen("/nonexistent/usine.h5", H5F_ACC_RDONLY, H5P_DEFAULT));
  ASSERT_FALSE(file.ok());
  const std::string message(file.status().message());
  EXPECT_THAT(message, HasSubstr("hdf5_status_test.cc:"));
  EXPECT_THAT(message, HasSubstr("H5Fopen(\"/nonexistent/usine.h5\""));
  EXPECT_THAT(message, HasSubstr("unable to open file"));
  EXPECT_EQ(H5Eget_num(H5E_DEFAULT), 0) << "the stack is cleared once read";
}

TEST(Hdf5Status, NonNegativeResultsAreOk) {
  EXPECT_OK(USINE_HDF5_STATUS(H5open()));
  ASSERT_OK_AND_ASSIGN(hid_t space, USINE_HDF5_ID(H5Screate(H5S_SCALAR)));
  EXPECT_OK(USINE_HDF5_STATUS(H5Sclose(space)));
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  const absl::Status closed_twice = USINE_HDF5_STATUS(H5Sclose(space));
  EXPECT_TRUE(absl::IsInternal(closed_twice));
  EXPECT_THAT(std::string(closed_twice.message()), HasSubstr("H5Sclose(space) failed"));
}

}  // namespace
}  // namespace usine
