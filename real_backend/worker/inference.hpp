#pragma once
// A task's inferences on a resident model, and each one's result as JSON. The task's inputs go
// to the model in one call, which batches them as the device allows; a failure of one input is
// that input's result, so that one bad prompt does not fail the task around it.
//
//   classify  {"label": L, "scores": {label: sum of the log-probabilities of its tokens}}
//   generate  {"text": T, "tokens": [...], "finish": "stop" | "length"}
//   noop      null
//
// Generated text is the tokenizer's decoding without special tokens (a model directory), or the
// tokens below 256 as bytes (byte-level model files); it ends before the first stop string.

#include <cstdint>
#include <string>
#include <vector>

#include "real_backend/model/model_runtime.hpp"
#include "real_backend/wire/protocol.hpp"

namespace hearth::text {
class Tokenizer;
}

namespace hearth::real {

// Results of `task` in input order. `model` is null for a context without one (noop), and
// `tokenizer` null for byte-level models. Throws what `cancelled` makes the model throw.
std::vector<std::string> run_inferences(const InferenceSettings& settings, LoadedModel* model,
                                        const text::Tokenizer* tokenizer, const Task& task,
                                        const CancelCheck& cancelled);

// Why a task cannot run at all (seeds not matching inputs, settings out of range), or empty.
std::string task_problem(const InferenceSettings& settings, const Task& task);

}  // namespace hearth::real
