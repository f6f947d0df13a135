#pragma once
// Processes on this machine as a batch system, for `hearth run --factory local`: the pool sizing
// and submission logic of a cluster run, without a cluster. A "job" is a `hearth worker` child
// process named local-N, with its cache in WORK_DIR/cache/local-N and its log in
// WORK_DIR/logs/local-N.log, on cuda:N modulo the GPUs here (unless worker_args say --device).
// Cancelling sends SIGTERM (a preemption notice); the processes die with the manager.

#include <memory>

#include "real_backend/factory/batch_settings.hpp"
#include "real_backend/factory/batch_system.hpp"

namespace hearth::real {

// `settings` with hearth, keys and work_dir set (absolute).
std::unique_ptr<BatchSystem> make_local_batch(FactorySettings settings);

}  // namespace hearth::real
