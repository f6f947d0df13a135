# test_chat: the Jinja interpreter and chat templates (real_backend/text/), the latter compared
# with Hugging Face's JavaScript renderer, which the npm_deps_chat fixture installs (needs npm).
find_package(nlohmann_json 3 CONFIG REQUIRED)
add_executable(test_chat
  ${CMAKE_CURRENT_LIST_DIR}/jinja_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/chat_template_test.cpp)
target_link_libraries(test_chat PRIVATE hearth_chat hearth_os nlohmann_json::nlohmann_json
                                        Catch2::Catch2WithMain)
target_compile_definitions(test_chat PRIVATE
  HEARTH_NPM_DIR="${PROJECT_BINARY_DIR}/npm"
  HEARTH_CHAT_REFERENCE="${CMAKE_CURRENT_LIST_DIR}/reference_chat.mjs"
  HEARTH_LLAMA2_CHAT_TEMPLATE="${CMAKE_CURRENT_LIST_DIR}/data/llama2_chat_template.jinja")
add_test(NAME npm_deps_chat COMMAND ${PROJECT_SOURCE_DIR}/scripts/npm-deps ${PROJECT_BINARY_DIR}/npm)
set_tests_properties(npm_deps_chat PROPERTIES FIXTURES_SETUP npm_deps_chat)
catch_discover_tests(test_chat PROPERTIES FIXTURES_REQUIRED npm_deps_chat)
