#include "tests/real/gate.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <thread>

#include "os/atomic_file.hpp"
#include "os/fd.hpp"

namespace hearth::testing {

namespace fs = std::filesystem;

namespace {

constexpr std::uint64_t kOpen = std::numeric_limits<std::uint64_t>::max();

// The number in `path`; 0 if there is none yet. "open" is no limit. Numbers are written whole or
// not at all (os::write_file_atomically): a worker may be killed while it writes.
std::uint64_t read_number(const fs::path& path) {
  std::ifstream in(path);
  std::string text;
  if (!(in >> text)) return 0;
  return text == "open" ? kOpen : std::stoull(text);
}

// flock() on a file of the gate: excludes other processes and other threads (each opens its own
// description), and is released when its holder dies.
class FileLock {
 public:
  explicit FileLock(const fs::path& path)
      : fd_(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644)) {
    if (!fd_.is_open() || ::flock(fd_.get(), LOCK_EX) != 0) {
      throw std::runtime_error("cannot lock " + path.string());
    }
  }

 private:
  os::Fd fd_;  // closing it releases the lock
};

class GatedModel final : public real::LoadedModel {
 public:
  GatedModel(std::shared_ptr<real::LoadedModel> inner, Gate gate)
      : inner_(std::move(inner)), gate_(std::move(gate)) {}

  // One input at a time, each after its own pass through the gate, so that a test sees (and can
  // cancel) a task between its inferences.
  std::vector<real::InferenceResult> classify(const std::vector<std::vector<std::int32_t>>& inputs,
                                              const std::vector<std::vector<std::int32_t>>& labels,
                                              const real::CancelCheck& cancelled) override {
    std::vector<real::InferenceResult> out;
    for (const auto& input : inputs) {
      gate_.take();
      if (cancelled && cancelled()) throw real::Cancelled();
      out.push_back(inner_->classify({input}, labels, cancelled).at(0));
    }
    return out;
  }
  std::vector<real::InferenceResult> generate(const std::vector<std::vector<std::int32_t>>& inputs,
                                              const real::GenerateOptions& options,
                                              const real::StopCheck& stop,
                                              const real::CancelCheck& cancelled) override {
    std::vector<real::InferenceResult> out;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      gate_.take();
      if (cancelled && cancelled()) throw real::Cancelled();
      real::GenerateOptions one = options;
      if (!options.seeds.empty()) one.seeds = {options.seeds.at(i)};
      real::StopCheck stop_one;
      if (stop) {
        stop_one = [&](std::size_t, const std::vector<std::int32_t>& tokens) {
          return stop(i, tokens);
        };
      }
      out.push_back(inner_->generate({inputs[i]}, one, stop_one, cancelled).at(0));
    }
    return out;
  }
  void set_max_batch(std::size_t inputs) override { inner_->set_max_batch(inputs); }

 private:
  std::shared_ptr<real::LoadedModel> inner_;
  Gate gate_;
};

}  // namespace

Gate::Gate(fs::path dir) : dir_(std::move(dir)) {
  fs::create_directories(dir_ / "waiting");
}

void Gate::allow(std::uint64_t total) {
  os::write_file_atomically(dir_ / "quota", std::to_string(total));
}

void Gate::open() {
  os::write_file_atomically(dir_ / "quota", "open");
}

std::uint64_t Gate::used() const {
  return read_number(dir_ / "used");
}

bool Gate::waiting(pid_t pid) const {
  std::string prefix = pid == 0 ? "" : std::to_string(pid) + "-";
  for (const auto& entry : fs::directory_iterator(dir_ / "waiting")) {
    if (entry.path().filename().string().starts_with(prefix)) return true;
  }
  return false;
}

void Gate::take() const {
  fs::path marker;
  while (true) {
    if (read_number(dir_ / "quota") == kOpen) break;  // not counted: nobody waits for these
    {
      FileLock lock(dir_ / "lock");
      std::uint64_t used = read_number(dir_ / "used");
      if (used < read_number(dir_ / "quota")) {
        os::write_file_atomically(dir_ / "used", std::to_string(used + 1));
        break;
      }
    }
    if (marker.empty()) {
      marker = dir_ / "waiting" / (std::to_string(getpid()) + "-" + std::to_string(gettid()));
      std::ofstream touch(marker);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (!marker.empty()) fs::remove(marker);
}

GatedRuntime::GatedRuntime(real::ModelRuntime& inner, Gate gate)
    : inner_(inner), gate_(std::move(gate)) {}

GatedRuntime::GatedRuntime(std::unique_ptr<real::ModelRuntime> inner, Gate gate)
    : owned_(std::move(inner)), inner_(*owned_), gate_(std::move(gate)) {}

GatedRuntime::~GatedRuntime() = default;

std::string GatedRuntime::resolve_device(const std::string& requested) {
  return inner_.resolve_device(requested);
}

void GatedRuntime::set_threads(int threads) {
  inner_.set_threads(threads);
}

std::shared_ptr<real::LoadedModel> GatedRuntime::load(const std::string& bytes,
                                                      const std::string& device) {
  return std::make_shared<GatedModel>(inner_.load(bytes, device), gate_);
}

std::shared_ptr<real::LoadedModel> GatedRuntime::load_file(const std::string& path,
                                                           const std::string& device) {
  return std::make_shared<GatedModel>(inner_.load_file(path, device), gate_);
}

std::shared_ptr<real::LoadedModel> GatedRuntime::load_model(const real::ModelFiles& files,
                                                            const std::string& device) {
  return std::make_shared<GatedModel>(inner_.load_model(files, device), gate_);
}

real::LoadReport GatedRuntime::last_load() const {
  return inner_.last_load();
}

void GatedRuntime::save_builtin(const real::BuiltinModel& model, const std::string& path) {
  inner_.save_builtin(model, path);
}

void GatedRuntime::save_torchscript(const std::string& raw_model_path, const std::string& path) {
  inner_.save_torchscript(raw_model_path, path);
}

}  // namespace hearth::testing
