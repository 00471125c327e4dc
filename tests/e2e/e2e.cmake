# tests/e2e: the whole pipeline end to end (label e2e), and the compose/ validation (label
# integration). Each e2e test brings up its own stack: a schema in the ctest Postgres (or a
# private cluster), a devbroker (label kafka: topics and groups of its own on the run's Apache
# Kafka broker, or a private one), elevensim, the ingress and the workers, on free loopback ports.
set(E2E_HARNESS
  ${CMAKE_CURRENT_LIST_DIR}/e2e_stack.c
  ${CMAKE_CURRENT_LIST_DIR}/e2e_driver.c
  ${CMAKE_CURRENT_LIST_DIR}/e2e_check.c
  ${CMAKE_CURRENT_LIST_DIR}/e2e_sim.c
  ${CMAKE_CURRENT_LIST_DIR}/e2e_group.c)

foreach(scenario load crash pg_outage broker scale)
  callpipe_integration_test(NAME e2e_${scenario}
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_e2e_${scenario}.c ${E2E_HARNESS}
    LABELS e2e TIMEOUT 300)
  target_include_directories(e2e_${scenario} PRIVATE ${CMAKE_CURRENT_LIST_DIR})
endforeach()

# GET /events (the console's live stream) against the whole pipeline, with its own SSE client.
callpipe_integration_test(NAME e2e_events
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_e2e_events.c ${CMAKE_CURRENT_LIST_DIR}/e2e_sse.c
    ${E2E_HARNESS}
  LABELS e2e TIMEOUT 300)
target_include_directories(e2e_events PRIVATE ${CMAKE_CURRENT_LIST_DIR})

callpipe_integration_test(NAME e2e_run_once
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_e2e_run_once.c
  LABELS e2e TIMEOUT 300)
# scripts/run picks its ports at random and checks only listening sockets; alone, it does not
# race the other tests' many short-lived loopback connections for them.
set_tests_properties(e2e_run_once PROPERTIES RUN_SERIAL TRUE)

# compose/: what can be checked without Docker (docker-compose config, env names vs --help,
# the Dockerfile's build recipe). Needs the binaries, not the database.
add_test(NAME compose_check
  COMMAND ${CMAKE_CURRENT_LIST_DIR}/compose_check.sh ${CMAKE_SOURCE_DIR} ${CMAKE_BINARY_DIR}/bin)
set_tests_properties(compose_check PROPERTIES LABELS integration TIMEOUT 120)

# The same scenarios on real Apache Kafka (label kafka: the run's shared broker, topics and
# groups of each test's own).
foreach(scenario load crash pg_outage scale events)
  callpipe_kafka_variant(e2e_${scenario})
endforeach()

# Kafka only: the broker itself is killed with -9 and restarted, a private one (the shared broker
# serves the other tests). Needs the kafka fixture for the fetched jars, not for its broker.
if(CALLPIPE_KAFKA_TESTS)
  callpipe_integration_test(NAME e2e_kafka_restart
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_e2e_kafka_restart.c ${E2E_HARNESS}
    LABELS kafka TIMEOUT 300)
  target_include_directories(e2e_kafka_restart PRIVATE ${CMAKE_CURRENT_LIST_DIR})
  set_tests_properties(e2e_kafka_restart PROPERTIES FIXTURES_REQUIRED "pg;kafka"
    ENVIRONMENT "${CALLPIPE_TEST_ENV};CALLPIPE_TEST_BROKER=kafka")
endif()
