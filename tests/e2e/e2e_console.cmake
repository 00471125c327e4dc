# (named after e2e.cmake so that it is included after it: it uses E2E_HARNESS)
# The operations console in a real browser (label browser): Debian's chromium, driven by the
# pinned playwright-core of tests/browser (npm ci into the build directory by the browser_setup
# fixture; no browser download), against the whole stack of the e2e harness. Screenshots go to
# <build>/browser/screenshots.
set(CONSOLE_BROWSER_DIR ${CMAKE_BINARY_DIR}/browser)

add_test(NAME browser_setup
  COMMAND ${CMAKE_SOURCE_DIR}/tests/browser/setup.sh ${CMAKE_SOURCE_DIR}/tests/browser ${CONSOLE_BROWSER_DIR})
set_tests_properties(browser_setup PROPERTIES FIXTURES_SETUP browser LABELS browser TIMEOUT 300)

callpipe_integration_test(NAME e2e_console
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_e2e_console.c ${E2E_HARNESS}
  LABELS "e2e;browser" TIMEOUT 300)
target_include_directories(e2e_console PRIVATE ${CMAKE_CURRENT_LIST_DIR})
set_tests_properties(e2e_console PROPERTIES FIXTURES_REQUIRED "pg;browser")
set_property(TEST e2e_console APPEND PROPERTY ENVIRONMENT
  "CONSOLE_SHOTS_DIR=${CONSOLE_BROWSER_DIR}/screenshots"
  "CONSOLE_NODE_MODULES=${CONSOLE_BROWSER_DIR}/node_modules")
