# hearth_chat: chat templates of Hugging Face tokenizer_config.json files, rendered as Hugging
# Face renders them (jinja.cpp: the Jinja subset they use; chat_template.cpp: the config and the
# variables apply_chat_template passes).
add_library(hearth_chat STATIC
  ${CMAKE_CURRENT_LIST_DIR}/jinja.cpp
  ${CMAKE_CURRENT_LIST_DIR}/chat_template.cpp)
target_include_directories(hearth_chat PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(hearth_chat PUBLIC hearth_policy fmt::fmt PRIVATE nlohmann_json::nlohmann_json)
