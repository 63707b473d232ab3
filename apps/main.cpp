// dscope: the command-line program. Each sub-command runs as its parser callback; this is the only place
// that turns an exception into a one-line message on stderr and a non-zero exit code.
#include <cstdio>
#include <exception>

#include "apps/commands.h"

int main(int argc, char** argv) {
  CLI::App program{"dscope: deep-learning engine and dermatoscopy workbench, written from scratch"};
  program.set_version_flag("--version", "dscope 0.1.0");
  program.require_subcommand(1);
  dscope::apps::add_build_command(program);
  dscope::apps::add_score_command(program);
  dscope::apps::add_predict_command(program);
  dscope::apps::add_demo_command(program);
  try {
    program.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return program.exit(error);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "dscope: error: %s\n", error.what());
    return 1;
  }
  return 0;
}
