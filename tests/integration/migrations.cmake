# tests/integration/migrations.cmake: migrations/, tools/migrate, db.c and store_calls.c against
# the throwaway Postgres (ctest fixture pg); each test works in its own schema.
callpipe_integration_test(NAME test_migrations
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_migrations.c ${CMAKE_CURRENT_LIST_DIR}/test_migrations_util.c
  TIMEOUT 120)
add_dependencies(test_migrations migrate)
callpipe_integration_test(NAME test_migrations_backfill
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_migrations_backfill.c ${CMAKE_CURRENT_LIST_DIR}/test_migrations_util.c
  TIMEOUT 120)
add_dependencies(test_migrations_backfill migrate)
callpipe_integration_test(NAME test_store_calls
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_store_calls.c
  TIMEOUT 120)
add_dependencies(test_store_calls migrate)
callpipe_integration_test(NAME test_store_calls_concurrency
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_store_calls_concurrency.c
  TIMEOUT 120)
add_dependencies(test_store_calls_concurrency migrate)
callpipe_integration_test(NAME test_console_window
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_console_window.c ${CMAKE_CURRENT_LIST_DIR}/test_migrations_util.c
  TIMEOUT 120)
add_dependencies(test_console_window migrate)
