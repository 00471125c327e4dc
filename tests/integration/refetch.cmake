# tests/integration/refetch.cmake: a message the dialer or the transcriber cannot take is read
# again, never passed over (the *-faults builds of tests/unit/faults.cmake refuse chosen ones).
callpipe_integration_test(NAME test_dialer_refetch
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_dialer_refetch.c LIBS dialer_it TIMEOUT 180)
add_dependencies(test_dialer_refetch dialer-faults elevensim devbroker migrate)
callpipe_integration_test(NAME test_transcriber_refetch
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_transcriber_refetch.c LIBS transcriber_it TIMEOUT 180)
add_dependencies(test_transcriber_refetch transcriber-faults devbroker migrate)
