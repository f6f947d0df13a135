#pragma once
// The figures of an experiment: experiments/plot.py, run with Debian's matplotlib, reads
// DIR/results.csv, DIR/experiment.json and DIR/gantt/, and writes DIR/figures/*.png and *.svg.

#include <string>
#include <vector>

namespace hearth::experiments {

// Draws the figures of the experiment in `out_dir` (those its spec asked for, or every one its
// grid allows) and returns the files written. `out_dir` may instead be a real run's events file
// (`hearth run --events FILE`): its GPU-time breakdown and Gantt chart, as a simulated run's, go
// to FILE's name with .plot for its extension. `figures` narrows the set. Throws InputError when
// the folder holds no results or the script fails. HEARTH_PYTHON and
// HEARTH_PLOT_EXPERIMENT_SCRIPT override the interpreter (/usr/bin/python3) and the script.
std::vector<std::string> plot_experiment(const std::string& out_dir,
                                         const std::vector<std::string>& figures = {});

}  // namespace hearth::experiments
