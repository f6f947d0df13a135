#pragma once
// SQLite for the state database (result_store.cpp, state_repair.cpp): statements that throw
// SqliteError, which tells a full disk and a damaged file from the rest, the schema, and how a
// message says sizes and free space. Internal to real_backend/manager.

#include <fmt/format.h>
#include <sqlite3.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>

namespace hearth::real::sqlite {

// An error SQLite reported, with what is needed to tell a full disk or a damaged file from the
// rest.
class SqliteError : public std::runtime_error {
 public:
  SqliteError(sqlite3* db, int rc, const std::string& doing)
      : std::runtime_error(fmt::format("{}: {}", doing, sqlite3_errmsg(db))),
        code(rc & 0xff),
        system_errno(sqlite3_system_errno(db)),
        sqlite_message(sqlite3_errmsg(db)) {}
  int code;
  int system_errno;
  std::string sqlite_message;

  bool damaged() const { return code == SQLITE_CORRUPT || code == SQLITE_NOTADB; }
  bool no_space() const {
    return code == SQLITE_FULL ||
           (code == SQLITE_IOERR &&
            (system_errno == ENOSPC || system_errno == EDQUOT || system_errno == EFBIG));
  }
  bool io_error() const { return code == SQLITE_IOERR; }
  // SQLite's words, and the system's where it gave an errno.
  std::string why() const {
    if (system_errno == 0) return "SQLite: " + sqlite_message;
    return fmt::format("SQLite: {}; {}", sqlite_message, std::strerror(system_errno));
  }
};

class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    if (int rc = sqlite3_prepare_v2(db, sql, -1, &s_, nullptr); rc != SQLITE_OK) {
      throw SqliteError(db, rc, fmt::format("sqlite: {}", sql));
    }
  }
  ~Statement() { sqlite3_finalize(s_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int i, std::int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Statement& bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& bind(int i, const std::optional<std::string>& v) {
    if (!v) {
      sqlite3_bind_null(s_, i);
      return *this;
    }
    return bind(i, *v);
  }
  Statement& bind(int i, const std::optional<std::int64_t>& v) {
    if (!v) {
      sqlite3_bind_null(s_, i);
      return *this;
    }
    return bind(i, *v);
  }
  // Runs to the end of a statement that returns no rows.
  void run() {
    int rc = sqlite3_step(s_);
    if (rc != SQLITE_DONE) {
      SqliteError e(db_, rc, "sqlite");
      sqlite3_reset(s_);
      throw e;
    }
    sqlite3_reset(s_);
  }
  bool next() {
    int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc != SQLITE_DONE) {
      SqliteError e(db_, rc, "sqlite");
      sqlite3_reset(s_);
      throw e;
    }
    sqlite3_reset(s_);
    return false;
  }
  void reset() { sqlite3_reset(s_); }
  std::int64_t integer(int col) { return sqlite3_column_int64(s_, col); }
  bool null(int col) { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
  std::string text(int col) {
    const unsigned char* p = sqlite3_column_text(s_, col);
    return p ? std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(s_, col)) : "";
  }
  std::optional<std::string> optional_text(int col) {
    if (null(col)) return std::nullopt;
    return text(col);
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
};

inline void exec(sqlite3* db, const char* sql) {
  if (int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr); rc != SQLITE_OK) {
    throw SqliteError(db, rc, sql);
  }
}

inline constexpr const char* kSchema =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS runs(run INTEGER PRIMARY KEY, started TEXT NOT NULL,"
    "  tasks INTEGER NOT NULL DEFAULT 0, inferences INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS results(context INTEGER NOT NULL, row INTEGER NOT NULL,"
    "  result TEXT, error TEXT, worker TEXT, run INTEGER NOT NULL, task INTEGER,"
    "  PRIMARY KEY(context, row)) WITHOUT ROWID;";

inline std::string bytes_text(double b) {
  if (b >= 1e9) return fmt::format("{:.2f} GB", b / 1e9);
  if (b >= 1e6) return fmt::format("{:.1f} MB", b / 1e6);
  if (b >= 1e3) return fmt::format("{:.1f} KB", b / 1e3);
  return fmt::format("{:.0f} B", b);
}

// "DIR has N free", for the file system holding `file`.
inline std::string free_space(const std::filesystem::path& file) {
  std::filesystem::path dir =
      file.parent_path().empty() ? std::filesystem::path(".") : file.parent_path();
  struct statvfs v {};
  if (::statvfs(dir.c_str(), &v) != 0) {
    return fmt::format("the free space of {} is unknown ({})", dir.string(), std::strerror(errno));
  }
  return fmt::format("{} has {} free", dir.string(),
                     bytes_text(static_cast<double>(v.f_bavail) * static_cast<double>(v.f_frsize)));
}

}  // namespace hearth::real::sqlite
