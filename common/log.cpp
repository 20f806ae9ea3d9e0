#include "log.hpp"

#include <spdlog/cfg/env.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace netlab {

spdlog::logger& program_output() {
  // Built on first use; the sink's own mutex keeps lines from different threads whole.
  static const auto logger = [] {
    auto out = std::make_shared<spdlog::logger>(
        "output", std::make_shared<spdlog::sinks::stdout_sink_mt>());
    out->set_pattern("%v");
    out->set_level(spdlog::level::trace);
    out->flush_on(spdlog::level::trace);  // a reader of the pipe sees each line when it happens
    return out;
  }();
  return *logger;
}

void setup_logging(std::string_view level, bool level_given) {
  // Not registered by name, so that setting up again (tests do) replaces it instead of throwing.
  auto diagnostics = std::make_shared<spdlog::logger>(
      "netlab", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  diagnostics->set_pattern("%H:%M:%S.%e %^%-5l%$ %v");
  spdlog::set_default_logger(diagnostics);
  spdlog::set_level(spdlog::level::from_str(std::string(level)));
  if (!level_given) {
    spdlog::cfg::load_env_levels();  // SPDLOG_LEVEL=debug, for instance
  }
}

}  // namespace netlab
