#pragma once
// What the scheduler believes about speeds and risks: how long a task or a stage will take on a
// worker, and how often workers of a GPU type are preempted. Starts from the hints it is given
// and learns from what it observes, per GPU type.

#include <cstdint>
#include <map>
#include <string>

#include "policy/model.hpp"

namespace hearth {

struct EstimatorConfig {
  double task_overhead_s = 1.0;     // fixed cost of one task once its context is resident
  double inference_s = 0.05;        // seconds per inference on a worker of speed 1.0
  double shared_storage_Bps = 1e9;  // whole shared storage, split among concurrent readers
  // Prior belief about preemptions: as if `prior_up_s` seconds of uptime had been seen with
  // `prior_losses` losses. Keeps estimates sane before anything was observed.
  double prior_losses = 0.0;
  double prior_up_s = 3600.0;
};

class Estimator {
 public:
  explicit Estimator(const EstimatorConfig& config) : config_(config) {}

  const EstimatorConfig& config() const { return config_; }

  // Seconds per inference on a worker of this spec, learned from tasks on its GPU type.
  double inference_s(const WorkerSpec& w) const;
  // Seconds for a task of `count` inferences on worker `w`, context already on GPU.
  double task_s(const WorkerSpec& w, std::uint64_t count) const;
  // Preemptions per second of uptime for workers of w's GPU type, shrunk toward the pool rate
  // when that type has little history.
  double preemption_rate(const WorkerSpec& w, double now_s) const;

  // Seconds for worker `to` to read `bytes` from shared storage while `readers` others read
  // too: an equal share of the storage's bandwidth, at most the worker's own link.
  double shared_read_s(double bytes, int readers, const WorkerSpec& to) const;
  // Seconds for a peer transfer of `bytes` from `from` (already sending `uploads`) to `to`.
  static double peer_read_s(double bytes, const WorkerSpec& from, int uploads,
                            const WorkerSpec& to);
  static double disk_to_host_s(double bytes, const WorkerSpec& w);
  static double host_to_gpu_s(double bytes, double init_s, const WorkerSpec& w);

  void task_observed(const WorkerSpec& w, std::uint64_t count, double duration_s);
  void worker_up(const WorkerSpec& w, double now_s);
  // A worker that joined at joined_s was lost now.
  void worker_lost(const WorkerSpec& w, double joined_s, double now_s);

 private:
  struct TypeHistory {
    double inference_s = 0;  // EWMA of observed seconds per inference at speed 1.0; 0 = none yet
    double losses = 0;
    double closed_up_s = 0;   // uptime of workers no longer up
    int up = 0;               // workers up now
    double joined_sum_s = 0;  // sum of their join times, so open uptime is up * now - joined_sum
    double up_s(double now_s) const { return closed_up_s + up * now_s - joined_sum_s; }
  };

  EstimatorConfig config_;
  std::map<std::string, TypeHistory> types_;
  TypeHistory pool_;
};

}  // namespace hearth
