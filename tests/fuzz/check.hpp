// The one assertion the fuzz targets use. Not assert(): it must fire in release-type builds too
// (the fuzz preset is RelWithDebInfo, where NDEBUG removes asserts), and abort() is what both
// libFuzzer and ctest recognise as a failing input. The message says which property broke.
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(condition)                                                                 \
  do {                                                                                        \
    if (!(condition)) {                                                                       \
      std::fprintf(stderr, "%s:%d: property violated: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                           \
    }                                                                                         \
  } while (false)
