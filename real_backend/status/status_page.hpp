#pragma once
// status_page.html, compiled into the binary (CMakeLists.txt embeds it at build time): the status
// page needs nothing from the source tree at run time.

#include <string_view>

namespace hearth::real {

std::string_view status_page_html();

}  // namespace hearth::real
