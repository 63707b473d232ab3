// The sub-commands of the dscope program. Each lives in its own file and adds itself to the parser;
// main() only parses, runs the chosen command, and turns an exception into a message and an exit code.
#pragma once

#include <CLI/CLI.hpp>

namespace dscope::apps {

// Adds `dscope demo`: trains a tiny convnet on generated images and prints the loss falling.
void add_demo_command(CLI::App& program);

}  // namespace dscope::apps
