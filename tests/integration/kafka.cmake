# tests/integration/kafka.cmake: kbus and devbroker against real devbroker processes.
# test_kbus_helper is a client process the tests start (consumer-group member or producer).
# test_kbus_api and test_kbus_group run on real Kafka too (the kafka tier); test_kbus_faults and
# test_devbroker need the devbroker's fault injection and control interface.
add_executable(test_kbus_helper ${CMAKE_CURRENT_LIST_DIR}/test_kbus_helper.c)
target_link_libraries(test_kbus_helper PRIVATE callpipe_common)

callpipe_integration_test(NAME test_kbus_group
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_kbus_group.c TIMEOUT 240)
add_dependencies(test_kbus_group test_kbus_helper devbroker)
callpipe_integration_test(NAME test_kbus_faults
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_kbus_faults.c TIMEOUT 240)
add_dependencies(test_kbus_faults devbroker)
callpipe_integration_test(NAME test_devbroker
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_devbroker.c TIMEOUT 60)
target_link_libraries(test_devbroker PRIVATE PkgConfig::JANSSON)
add_dependencies(test_devbroker devbroker)
callpipe_integration_test(NAME test_kbus_api
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_kbus_api.c TIMEOUT 60)
add_dependencies(test_kbus_api devbroker)
callpipe_kafka_variant(test_kbus_api)
callpipe_kafka_variant(test_kbus_group)
