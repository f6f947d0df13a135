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
//   model = "tiny.pt"           # a TorchScript file (hearth model builtin makes one), or a
//                               # directory, sent as its pack (wire/pack.hpp)
//   source = "manager"          # or "shared": workers read shared_path (default: model) themselves
//   task = "classify"           # or "generate", "noop"
//   dataset = "claims.jsonl"
//   template = "Claim: {claim}\nVerdict:"
//   labels = ["SUPPORTS", "REFUTES"]
//   label_tokens = ["S", "R"]   # one byte each, or integer token ids
//
//   [factory]                   # workers from a batch system (batch_settings.hpp)
//   kind = "slurm"
//   max_workers = 20
//
// docs/real-backend.md describes every key; docs/batch-systems.md the [factory] table.

#include <filesystem>
#include <string>
#include <vector>

#include "policy/engine.hpp"
#include "real_backend/factory/batch_settings.hpp"
#include "real_backend/manager/dataset.hpp"
#include "real_backend/wire/protocol.hpp"

namespace hearth::real {

enum class ContextOrigin { manager, shared_path };

struct JobContext {
  std::string name;
  std::filesystem::path model;  // the context's file or directory, as the manager sees it
  ContextOrigin origin = ContextOrigin::manager;
  std::filesystem::path shared_path;  // what workers open when origin is shared_path
  InferenceSettings inference;        // has_model: format "torchscript"; false for "bytes"
  std::string template_text;          // empty: inputs are the rows' input_ids
  PromptTemplate prompt;
  std::filesystem::path dataset;
  double init_s = 0;  // hint for the scheduler's load estimates
};

struct JobFile {
  std::filesystem::path file;
  std::filesystem::path output;
  std::filesystem::path state_dir;
  EngineConfig engine;
  std::vector<JobContext> contexts;
  FactorySettings factory;
};

// Throws InputError("job.toml:12: ...") for anything wrong or unknown in the file.
JobFile read_job_file(const std::filesystem::path& file);

}  // namespace hearth::real
