// Running a batch system's commands: what they print, how they end, and quoting for scripts.

#include <catch2/catch_test_macros.hpp>

#include <chrono>

#include "real_backend/factory/batch_system.hpp"

using namespace hearth::real;

TEST_CASE("a command's output, error output and exit status are captured") {
  CommandResult r = run_command({"sh", "-c", "echo 4242; echo 'sbatch: error: no' >&2; exit 3"});
  CHECK(r.status == 3);
  CHECK(r.out == "4242\n");
  CHECK(r.err == "sbatch: error: no\n");
  CHECK(complaint(r) == "sbatch: error: no");
  CHECK(complaint({1, " printed this\n", ""}) == "printed this");
  CHECK(complaint({5, "", ""}) == "exit status 5");
}

TEST_CASE("a command that cannot be found or does not finish is reported, not waited for") {
  CommandResult missing = run_command({"hearth-no-such-program"});
  CHECK(missing.status == 127);
  CHECK(missing.err == "cannot run hearth-no-such-program: No such file or directory");
  auto start = std::chrono::steady_clock::now();
  CommandResult slow = run_command({"sleep", "30"}, 0.3);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
  CHECK(slow.status == 128 + 9);
  CHECK(slow.err == "\nsleep did not finish within 0.3 s");
}

TEST_CASE("words for a job script are quoted only when the shell would misread them") {
  CHECK(shell_quote("/shared/bin/hearth") == "/shared/bin/hearth");
  CHECK(shell_quote("login1:7700") == "login1:7700");
  CHECK(shell_quote("A100 80GB") == "'A100 80GB'");
  CHECK(shell_quote("$HOME") == "'$HOME'");
  CHECK(shell_quote("it's") == "'it'\\''s'");
  CHECK(shell_quote("") == "''");
  CHECK(command_line({"sbatch", "--wrap", "sleep 1"}) == "sbatch --wrap 'sleep 1'");
  // The quoted word reads back as itself.
  CommandResult r = run_command({"sh", "-c", "printf %s " + shell_quote("a 'b' $c\\d")});
  CHECK(r.out == "a 'b' $c\\d");
}
