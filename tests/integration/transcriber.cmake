# tests/integration/transcriber.cmake: the transcriber against real Postgres and devbroker.
add_library(transcriber_it STATIC ${CMAKE_CURRENT_LIST_DIR}/transcriber_it.c)
target_link_libraries(transcriber_it PUBLIC callpipe_testsupport callpipe_common PkgConfig::CMOCKA)
target_include_directories(transcriber_it PUBLIC ${CMAKE_CURRENT_LIST_DIR})

callpipe_integration_test(NAME test_transcriber_store
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_transcriber_store.c TIMEOUT 120)
add_dependencies(test_transcriber_store migrate)

foreach(t flow lifecycle replay faults)
  if(EXISTS ${CMAKE_CURRENT_LIST_DIR}/test_transcriber_${t}.c)
    callpipe_integration_test(NAME test_transcriber_${t}
      SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_transcriber_${t}.c LIBS transcriber_it TIMEOUT 240)
    add_dependencies(test_transcriber_${t} transcriber devbroker migrate)
  endif()
endforeach()

# On real Kafka too (label kafka): the main flows, and replay's seek by time.
callpipe_kafka_variant(test_transcriber_flow)
callpipe_kafka_variant(test_transcriber_replay TIMEOUT 300)
