// The status snapshot read back (status_snapshot.hpp), as `hearth status` shows it
// (status_view.hpp) and as Prometheus metrics (status_metrics.hpp), from a snapshot the manager's
// record makes.

#include <sys/wait.h>
#include <unistd.h>
#include <catch2/catch_test_macros.hpp>

#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "real_backend/manager/run_monitor.hpp"
#include "real_backend/status/status_metrics.hpp"
#include "real_backend/status/status_server.hpp"
#include "real_backend/status/status_view.hpp"
#include "tests/input_error.hpp"
#include "tests/real/hearth_process.hpp"
#include "tests/real/helpers.hpp"

using namespace hearth;
using namespace hearth::real;

namespace {

// A snapshot of a run with one computing worker and one quarantined, as the manager makes it.
std::string sample_snapshot() {
  double now = 0;
  RunMonitorSetup setup;
  setup.total = 100;
  setup.contexts = {{"plain", 2e6}};
  RunMonitor m(setup, [&] { return now; });
  m.worker_joined(0, "gpu-a", "h100", "10.0.0.1");
  m.worker_joined(1, "gpu \"b\"", "a10", "10.0.0.2");
  m.stage_started(0, 0, Tier::disk, "manager", kNoWorker);
  now = 2;
  m.stage_ready(0, 0, Tier::disk);
  m.stage_ready(0, 0, Tier::gpu);
  m.task_started(0, TaskSpec{3, 9, 0, 0, 10}, false);
  m.worker_quarantined(1, "3 failed tasks in a row");
  now = 4;
  RunTotals t;
  t.done = 30;
  t.pending = 60;
  t.joins = 2;
  return m.snapshot(t).dump();
}

}  // namespace

TEST_CASE("hearth status shows progress, workers by GPU type, quarantines and errors") {
  StatusSnapshot s = parse_status(sample_snapshot(), "status.json");
  std::string text = render_status(s, s.updated_at + 1);
  INFO(text);
  CHECK(text.find("30 of 100 inferences done (30.0%)") != std::string::npos);
  CHECK(text.find("gpu-a") != std::string::npos);
  CHECK(text.find("h100") != std::string::npos);
  CHECK(text.find("3 failed tasks in a row") != std::string::npos);
  CHECK(format_duration(200) == "3 min 20 s");
  CHECK(format_bytes(1.2e6) == "1.2 MB");
}

TEST_CASE("metrics are in Prometheus' text format, label values escaped") {
  std::string m = prometheus_metrics(parse_status(sample_snapshot(), "status.json"));
  INFO(m);
  CHECK(m.find("# TYPE hearth_inferences_done gauge\nhearth_inferences_done 30\n") !=
        std::string::npos);
  CHECK(m.find("hearth_inferences_total 100\n") != std::string::npos);
  CHECK(m.find("# HELP hearth_workers ") != std::string::npos);
  CHECK(escape_label("a\"b\\c\nd") == "a\\\"b\\\\c\\nd");
}

TEST_CASE("a malformed status file is refused with where and what") {
  CHECK(testing::input_error([] {
          parse_status("{\"version\": 1", "s.json");
        }).starts_with("s.json: "));
  CHECK(testing::input_error([] { parse_status("[]", "s.json"); }).starts_with("s.json: "));
}

TEST_CASE("hearth status on a run whose manager died says so and exits 1") {
  testing::TempDir dir;
  pid_t gone = fork();
  if (gone == 0) _exit(0);
  REQUIRE(waitpid(gone, nullptr, 0) == gone);  // a pid no manager holds
  nlohmann::json s = nlohmann::json::parse(sample_snapshot());
  s["pid"] = gone;
  s["ended"] = nullptr;
  std::filesystem::create_directories(dir / "job.state");
  testing::write_file(dir / "job.state" / "status.json", s.dump());
  CHECK(testing::exit_status(testing::start_hearth({"status", (dir / "job.state").string()},
                                                   dir / "status.log")) == 1);
  std::string out = testing::read_file(dir / "status.log");
  INFO(out);
  CHECK(out.find("30 of 100 inferences done") != std::string::npos);
  CHECK(out.find(fmt::format("the manager is not running (pid {})", gone)) != std::string::npos);
}

TEST_CASE("the status page off loopback answers 403 without its token, and the page with it") {
  StatusServer server(StatusServerOptions{"0.0.0.0:0"});
  server.publish(sample_snapshot());
  REQUIRE(server.token().size() >= 16);
  httplib::Client client("127.0.0.1", server.port());
  for (const char* path : {"/", "/status.json", "/metrics"}) {
    auto bare = client.Get(path);
    REQUIRE(bare);
    CHECK(bare->status == 403);
    auto wrong =
        client.Get(std::string(path) + "?token=" + std::string(server.token().size(), 'x'));
    REQUIRE(wrong);
    CHECK(wrong->status == 403);
    auto right = client.Get(std::string(path) + "?token=" + server.token());
    REQUIRE(right);
    CHECK(right->status == 200);
  }
  CHECK(server.url().ends_with("/?token=" + server.token()));
}
