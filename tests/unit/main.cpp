// The one translation unit that holds Boost.Test's main().
#define BOOST_TEST_MODULE netlab
#include <boost/test/unit_test.hpp>
