// The sub-commands of the dscope program. Each lives in its own file and adds itself to the parser;
// main() only parses, runs the chosen command, and turns an exception into a message and an exit code.
#pragma once

#include <CLI/CLI.hpp>

namespace dscope::apps {

// Adds `dscope demo`: trains a tiny convnet on generated images and prints the loss falling.
void add_demo_command(CLI::App& program);
// Adds `dscope build`: import, split, train, choose the possible-cancer threshold, save, score.
void add_build_command(CLI::App& program);
// Adds `dscope score`: report.json, report.md and plots for a model on labelled images.
void add_score_command(CLI::App& program);
// Adds `dscope predict`: probabilities and the possible-cancer flag for images, on screen or as CSV.
void add_predict_command(CLI::App& program);

}  // namespace dscope::apps
