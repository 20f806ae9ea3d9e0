// The one translation unit that holds Boost.Test's main(), and the set-up every test program
// shares: logging configured once, before any test starts server threads (spdlog's default
// logger is created lazily otherwise, racing the first threads that log).
#define BOOST_TEST_MODULE netlab
#include <boost/test/unit_test.hpp>

#include "common/log.hpp"

struct quiet_logging {
  quiet_logging() { netlab::setup_logging("warn", true); }
};
BOOST_TEST_GLOBAL_FIXTURE(quiet_logging);
