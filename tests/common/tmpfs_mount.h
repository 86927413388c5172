// A small tmpfs mounted for one test, to fill a real filesystem without
// filling the machine's. Mounting needs root (CAP_SYS_ADMIN): where it is
// not allowed, mounted() is false and the test should GTEST_SKIP with
// skip_reason(). Unmounted (lazily, in case a child process still has files
// open there) when destroyed.
#ifndef STRATA_TESTS_COMMON_TMPFS_MOUNT_H_
#define STRATA_TESTS_COMMON_TMPFS_MOUNT_H_

#include <errno.h>
#include <sys/mount.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace strata::testing {

class TmpfsMount {
 public:
  // Mounts a tmpfs of `bytes` at `dir` (created if missing).
  TmpfsMount(const std::filesystem::path& dir, uint64_t bytes) : dir_(dir) {
    std::filesystem::create_directories(dir_);
    const std::string options = "size=" + std::to_string(bytes);
    if (mount("tmpfs", dir_.c_str(), "tmpfs", 0, options.c_str()) == 0) {
      mounted_ = true;
    } else {
      skip_reason_ = std::string("cannot mount a tmpfs at ") + dir_.string() + ": " +
                     std::strerror(errno) + " (needs root; CI runs as root)";
    }
  }
  ~TmpfsMount() {
    if (mounted_) umount2(dir_.c_str(), MNT_DETACH);
  }
  TmpfsMount(const TmpfsMount&) = delete;
  TmpfsMount& operator=(const TmpfsMount&) = delete;

  bool mounted() const { return mounted_; }
  const std::string& skip_reason() const { return skip_reason_; }
  const std::filesystem::path& path() const { return dir_; }

  // Writes `name` in 4 KiB pieces until the filesystem is full; the bytes
  // written.
  uint64_t Fill(const std::string& name) const {
    std::ofstream out(dir_ / name, std::ios::binary);
    const std::vector<char> chunk(4096, 'x');
    uint64_t written = 0;
    while (out.write(chunk.data(), static_cast<std::streamsize>(chunk.size()))) {
      out.flush();
      if (!out) break;
      written += chunk.size();
    }
    return written;
  }

 private:
  std::filesystem::path dir_;
  bool mounted_ = false;
  std::string skip_reason_;
};

}  // namespace strata::testing

#endif  // STRATA_TESTS_COMMON_TMPFS_MOUNT_H_
