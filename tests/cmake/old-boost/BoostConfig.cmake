# A stand-in for Debian's Boost 1.74 package config: tests that netlab refuses it by name.
set(Boost_VERSION 1.74.0)
set(Boost_FOUND TRUE)
