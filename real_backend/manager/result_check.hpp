#pragma once
// What a worker's results must look like, checked by the manager before they are committed, and
// whether two workers' results for the same task agree (verification, docs/real-backend.md).
//
// A result is one JSON value per input: {"error": text} for an input the model could not run, or
//   classify: {"label": L, "scores": {label: log-probability, ...}}, L one of the job's labels,
//             every label scored, finite and <= 0 (sums of log-probabilities), L the best one;
//   generate: {"text": text, "tokens": [ids], "finish": "stop" | "length"}, at most
//             max_new_tokens tokens, all of them once "length";
//   no model: null.

#include <string>
#include <vector>

#include "real_backend/wire/protocol.hpp"

namespace hearth::real {

// What is wrong with a task's results, and whether the worker alone can be to blame.
struct ResultProblem {
  std::string what;  // empty if the results are right ("result 3: label \"maybe\" is not one of
                     // the job's")
  // Results that no hearth worker sends, whatever its model computes: not JSON, another count or
  // shape, a label the job lacks, more tokens than asked for. A model gone wrong gives scores
  // that are NaN (null in JSON), infinite or positive, which a healthy model never does: those
  // may be the context's fault, these are the worker's.
  bool malformed = false;
};

// The problem, if any, of `results` for a task of `count` inputs under `settings`.
ResultProblem result_problem(const InferenceSettings& settings,
                             const std::vector<std::string>& results, std::size_t count);

// Empty if two checked result sets of one task agree: the same labels with every score within
// `tolerance` (absolute, on log-probabilities), the same generated tokens, the same errors. Else
// the first difference.
std::string results_differ(const InferenceSettings& settings, const std::vector<std::string>& a,
                           const std::vector<std::string>& b, double tolerance);

}  // namespace hearth::real
