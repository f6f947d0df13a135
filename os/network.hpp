#pragma once
// Hosts and addresses as hearth's processes name them: "host:port" strings, this machine's name.

#include <string>
#include <string_view>

namespace hearth::os {

// This machine's host name.
std::string host_name();

// Whether `host` ("127.0.0.1", "localhost", "::1", "[::1]") names this machine's loopback
// interface: only processes on this machine can reach it.
bool is_loopback(std::string_view host);

// The host of "host:port" (everything before the last ':').
std::string_view host_of(std::string_view address);

}  // namespace hearth::os
