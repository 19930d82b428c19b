// Helpers for the suites that run the real paylab binary (e2e_test,
// chaos_cli_test): a scratch directory per test, the binary run with its
// output captured, a file read whole. PAYLAB_BIN_PATH is set by CMake.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace paylab::testing_cli {

namespace fs = std::filesystem;

struct Ran {
  int exit_code = -1;
  std::string out;
  std::string err;
};

inline std::string ReadFile(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// A fresh, empty directory for one test (per process: CTest runs tests in parallel).
inline fs::path TempDir(const std::string& suite, const std::string& name) {
  const fs::path d = fs::temp_directory_path() /
                     ("paylab_" + suite + "_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// Runs the paylab binary with `args` (already shell-quoted where needed),
// its stdout and stderr captured through files in `dir`.
inline Ran Paylab(const std::string& args, const fs::path& dir) {
  const fs::path out = dir / "stdout.txt", err = dir / "stderr.txt";
  const std::string cmd =
      std::string(PAYLAB_BIN_PATH) + " " + args + " >" + out.string() + " 2>" + err.string();
  const int status = std::system(cmd.c_str());
  Ran r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = ReadFile(out);
  r.err = ReadFile(err);
  return r;
}

}  // namespace paylab::testing_cli
