#include "policy/estimator.hpp"

#include <algorithm>

namespace hearth {

namespace {
// Weight of a new observation in the per-type moving average of seconds per inference.
constexpr double kLearningRate = 0.2;
// Uptime (seconds) after which a GPU type's own preemption history outweighs the pool's.
constexpr double kTypeTrust_s = 4 * 3600.0;
}  // namespace

double Estimator::inference_s(const WorkerSpec& w) const {
  auto it = types_.find(w.gpu_type);
  if (it != types_.end() && it->second.inference_s > 0) return it->second.inference_s / w.speed;
  return config_.inference_s / w.speed;
}

double Estimator::task_s(const WorkerSpec& w, std::uint64_t count) const {
  return config_.task_overhead_s + static_cast<double>(count) * inference_s(w);
}

double Estimator::preemption_rate(const WorkerSpec& w, double now_s) const {
  double pool_rate =
      (pool_.losses + config_.prior_losses) / (pool_.up_s(now_s) + config_.prior_up_s);
  auto it = types_.find(w.gpu_type);
  if (it == types_.end()) return pool_rate;
  // Shrink the type's rate toward the pool's: as if kTypeTrust_s of pool history backed it.
  const TypeHistory& t = it->second;
  return (t.losses + pool_rate * kTypeTrust_s) / (t.up_s(now_s) + kTypeTrust_s);
}

double Estimator::shared_read_s(double bytes, int readers, const WorkerSpec& to) const {
  return bytes / std::min(config_.shared_storage_Bps / (readers + 1), to.network_Bps);
}

double Estimator::peer_read_s(double bytes, const WorkerSpec& from, int uploads,
                              const WorkerSpec& to) {
  double rate = std::min(from.network_Bps / (uploads + 1), to.network_Bps);
  return bytes / rate;
}

double Estimator::disk_to_host_s(double bytes, const WorkerSpec& w) {
  return bytes / w.disk_read_Bps;
}

double Estimator::host_to_gpu_s(double bytes, double init_s, const WorkerSpec& w) {
  return bytes / w.host_to_gpu_Bps + init_s;
}

void Estimator::task_observed(const WorkerSpec& w, std::uint64_t count, double duration_s) {
  if (count == 0) return;
  double per_inference =
      std::max(0.0, duration_s - config_.task_overhead_s) / static_cast<double>(count) * w.speed;
  if (per_inference <= 0) return;
  TypeHistory& t = types_[w.gpu_type];
  t.inference_s = t.inference_s > 0
                      ? (1 - kLearningRate) * t.inference_s + kLearningRate * per_inference
                      : per_inference;
}

void Estimator::worker_up(const WorkerSpec& w, double now_s) {
  for (TypeHistory* t : {&types_[w.gpu_type], &pool_}) {
    t->up += 1;
    t->joined_sum_s += now_s;
  }
}

void Estimator::worker_lost(const WorkerSpec& w, double joined_s, double now_s) {
  for (TypeHistory* t : {&types_[w.gpu_type], &pool_}) {
    t->up -= 1;
    t->joined_sum_s -= joined_s;
    t->closed_up_s += now_s - joined_s;
    t->losses += 1;
  }
}

}  // namespace hearth
