// Asio's implementation, compiled once for the whole suite (BOOST_ASIO_SEPARATE_COMPILATION).
#include <boost/asio/impl/src.hpp>
