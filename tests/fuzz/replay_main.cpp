// The regression half of fuzzing: in the normal (g++) builds each fuzz target is linked with this
// main instead of libFuzzer, and runs its input function over every file of its corpus. So the
// hand-written seeds, and any crash a fuzzing run copied into the corpus, are checked by ctest
// forever, without clang and without the time a fuzzing run takes.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  std::size_t files = 0;
  for (int i = 1; i < argc; ++i) {
    for (const auto& entry : fs::directory_iterator(argv[i])) {
      if (!entry.is_regular_file()) continue;
      std::ifstream in(entry.path(), std::ios::binary);
      const std::vector<char> bytes{std::istreambuf_iterator<char>(in), {}};
      // Named before it runs: when an input aborts, the last line says which file it was.
      std::printf("%s (%zu bytes)\n", entry.path().c_str(), bytes.size());
      std::fflush(stdout);
      LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
      ++files;
    }
  }
  std::printf("%zu inputs, all passed\n", files);
  // An empty corpus is a mistake in the set-up (a renamed directory), not a pass.
  return files > 0 ? 0 : 1;
}
