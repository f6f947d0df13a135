#pragma once
// A job: what `hearth run` does, read from a TOML file. Paths are relative to the job file.
//
//   output = "labels.jsonl"     # one line per input: id, context, result, worker
//   state = "labels.state"      # SQLite record of finished work and the keys; a rerun resumes
//
//   [policy]                    # as the simulator's; flags of hearth run override
//   placement = "pcm"
//   batch_size = 20
//
//   [[contexts]]
//   name = "fever-prompt-1"
//   model = "smollm2"           # a Hugging Face model directory (sent as its pack,
//                               # wire/pack.hpp), or a TorchScript or raw file
//   source = "manager"          # or "shared": workers read shared_path (default: model) themselves
//   task = "classify"           # or "generate", "noop"
//   dataset = "claims.jsonl"
//   template = "Claim: {claim}\nVerdict:"
//   chat = true                 # wrap the prompt in the model's chat template (directories)
//   labels = ["SUPPORTS", "REFUTES"]
//   label_texts = [...]         # what is scored after the prompt (default " SUPPORTS", or no
//                               # space with chat); files: label_tokens = ["S", "R"] instead
//
//   [factory]                   # workers from a batch system (batch_settings.hpp)
//   kind = "slurm"
//   max_workers = 20
//
// docs/real-backend.md describes every key; docs/batch-systems.md the [factory] table.

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/engine.hpp"
#include "real_backend/factory/batch_settings.hpp"
#include "real_backend/manager/dataset.hpp"
#include "real_backend/wire/protocol.hpp"

namespace hearth::real {

enum class ContextOrigin { manager, shared_path };
// What `model` is: a Hugging Face model directory (hf, tokenized by its own tokenizer), a
// TorchScript or raw model file (byte-level tokens), or bytes without a model (noop benchmarks).
enum class ModelFormat { hf, torchscript, bytes };

struct JobContext {
  std::string name;
  std::filesystem::path model;  // the context's file or directory, as the manager sees it
  ContextOrigin origin = ContextOrigin::manager;
  std::filesystem::path shared_path;  // what workers open when origin is shared_path
  ModelFormat format = ModelFormat::torchscript;
  InferenceSettings inference;  // label_tokens and stop_tokens of hf models: filled by RunPlan
  std::string template_text;    // empty: inputs are the rows' input_ids
  PromptTemplate prompt;
  bool chat = false;                     // hf: the prompt is a user message in the chat template
  std::optional<std::string> system;     // chat: a system message before it
  std::vector<std::string> label_texts;  // hf classify: each label's text, scored after the prompt
  std::uint64_t seed = 0;                // generate with temperature > 0
  std::filesystem::path dataset;
  double init_s = 0;  // hint for the scheduler's load estimates
};

struct JobFile {
  std::filesystem::path file;
  std::filesystem::path output;
  std::filesystem::path state_dir;
  // Workers hold their next task ([policy] pipeline, on by default): a round trip to the
  // manager between tasks is real here.
  EngineConfig engine = [] {
    EngineConfig e;
    e.pipeline = true;
    return e;
  }();
  // [policy] checks of workers' results (docs/real-backend.md, "Bad workers"): the share of
  // finished tasks run again on another worker, how far their scores may differ, and how many
  // failed tasks in a row quarantine a worker.
  double verify = 0;
  double verify_tolerance = 0.05;
  int quarantine_after = 3;
  std::vector<JobContext> contexts;
  FactorySettings factory;
  // [transfer]: how workers move contexts between them (docs/real-backend.md, "Transfers").
  // encryption = false sends the bytes of bulk transfers in the clear, for a trusted cluster
  // network: every chunk is still checked against the manager's digests, and a holder still serves
  // only the transfers a CURVE-authenticated peer asked for. streams: data connections per source.
  bool transfer_encryption = true;
  int transfer_streams = 2;
};

// Throws InputError("job.toml:12: ...") for anything wrong or unknown in the file.
JobFile read_job_file(const std::filesystem::path& file);
// The same from the file's text, read elsewhere: `file` names it in messages and anchors its
// relative paths.
JobFile read_job_text(std::string_view text, const std::filesystem::path& file);

}  // namespace hearth::real
