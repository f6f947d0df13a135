#pragma once
// What one run of a job has to do: the job, its datasets, its context files' digests, the state
// store, and for each context the rows no earlier run finished. The core sees only the pending
// rows: inference i of context c is row pending(c)[i], so a resumed run needs nothing from the
// core but a smaller workload.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "policy/workload.hpp"
#include "real_backend/manager/dataset.hpp"
#include "real_backend/manager/job_file.hpp"
#include "real_backend/manager/prompt_encoder.hpp"
#include "real_backend/manager/result_store.hpp"
#include "real_backend/wire/file_hash.hpp"

namespace hearth::real {

class RunPlan {
 public:
  // Reads the datasets (checking every row against its context's template), hashes the context
  // files, opens the state in job.state_dir. Throws InputError.
  explicit RunPlan(JobFile job, bool durable = false);

  const JobFile& job() const { return job_; }
  std::size_t context_count() const { return job_.contexts.size(); }
  const Dataset& dataset(ContextId c) const { return *datasets_[c]; }
  ResultStore& store() { return *store_; }
  const ContextInfo& info(ContextId c) const { return infos_[c]; }

  const std::vector<std::uint64_t>& pending(ContextId c) const { return pending_[c]; }
  std::uint64_t rows() const { return rows_; }
  std::uint64_t done_before() const { return done_before_; }
  // Rows of context c with a result from an earlier run of this job.
  std::uint64_t done_before(ContextId c) const { return done_before_by_[c]; }
  // The core's workload: each context with its pending rows as inferences.
  Workload workload() const;

  // The dataset rows of inferences [first, first + count) of context c, and their token ids.
  std::vector<std::uint64_t> rows_of(ContextId c, std::uint64_t first, std::uint64_t count) const;
  std::vector<std::vector<std::int32_t>> inputs(ContextId c, std::uint64_t first,
                                                std::uint64_t count) const;
  // Their sampling seeds (Task::seeds): from the job's seed, the context and each row, so that a
  // rerun or a resumed run samples the same. Empty when the context does not sample.
  std::vector<std::uint64_t> seeds(ContextId c, std::uint64_t first, std::uint64_t count) const;

  // Writes job.output from the store; requires every row to be recorded.
  void write_output();

 private:
  JobFile job_;
  std::vector<std::shared_ptr<Dataset>> datasets_;  // by context; contexts may share one
  std::vector<std::shared_ptr<const PromptEncoder>> encoders_;  // by context
  std::vector<ContextInfo> infos_;
  std::unique_ptr<ResultStore> store_;
  std::vector<std::vector<std::uint64_t>> pending_;
  std::uint64_t rows_ = 0;
  std::uint64_t done_before_ = 0;
  std::vector<std::uint64_t> done_before_by_;  // by context
};

}  // namespace hearth::real
