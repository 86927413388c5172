#include "storage/rocksdb_info_log.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "server/logging/log.h"
#include "tests/common/temp_dir.h"
#include "tests/common/tmpfs_mount.h"

namespace strata::storage {
namespace {

std::string ReadAll(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(RocksDbInfoLogTest, WritesLinesAndRollsPastItsSize) {
  strata::testing::TempDir dir;
  auto log = std::make_shared<RocksDbInfoLog>(dir.path().string(), 4096);
  const std::shared_ptr<rocksdb::Logger> logger = log;
  rocksdb::Log(rocksdb::InfoLogLevel::INFO_LEVEL, logger, "flush job %d done", 7);
  EXPECT_NE(ReadAll(dir.path() / "LOG").find("flush job 7 done\n"), std::string::npos);
  for (int i = 0; i < 200; ++i) {
    rocksdb::Log(rocksdb::InfoLogLevel::INFO_LEVEL, logger, "line %d, about forty bytes....", i);
  }
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "LOG.old"));
  EXPECT_LE(std::filesystem::file_size(dir.path() / "LOG"), 4096u);
  EXPECT_LE(log->GetLogFileSize(), 4096u);
  EXPECT_EQ(log->dropped_lines(), 0u);
}

TEST(RocksDbInfoLogTest, ErrorsAlsoGoToTheStructuredLog) {
  strata::testing::TempDir dir;
  std::ostringstream sink;
  logging::Configure(logging::Level::kInfo, logging::Format::kJson, &sink);
  {
    const std::shared_ptr<rocksdb::Logger> log =
        std::make_shared<RocksDbInfoLog>(dir.path().string(), 4096);
    rocksdb::Log(rocksdb::InfoLogLevel::ERROR_LEVEL, log, "bad thing %s", "here");
    rocksdb::Log(rocksdb::InfoLogLevel::INFO_LEVEL, log, "routine");
  }
  logging::Configure(logging::Level::kInfo, logging::Format::kText, nullptr);
  EXPECT_NE(sink.str().find(R"("event":"rocksdb")"), std::string::npos) << sink.str();
  EXPECT_NE(sink.str().find("bad thing here"), std::string::npos) << sink.str();
  EXPECT_EQ(sink.str().find("routine"), std::string::npos) << sink.str();
}

// RocksDB's own logger aborts the process at the line after one it failed
// to write; this one drops lines on a full disk and goes on.
TEST(RocksDbInfoLogTest, AFullDiskDropsLinesWithoutACrash) {
  strata::testing::TempDir dir;
  strata::testing::TmpfsMount fs(dir.path() / "mnt", 256 << 10);
  if (!fs.mounted()) GTEST_SKIP() << fs.skip_reason();
  auto log = std::make_shared<RocksDbInfoLog>(fs.path().string(), uint64_t{1} << 20);
  const std::shared_ptr<rocksdb::Logger> logger = log;
  fs.Fill("filler");
  for (int i = 0; i < 1000; ++i) {
    rocksdb::Log(rocksdb::InfoLogLevel::INFO_LEVEL, logger, "line %d of a log on a full disk", i);
    logger->Flush();
  }
  EXPECT_GT(log->dropped_lines(), 0u);
}

}  // namespace
}  // namespace strata::storage
