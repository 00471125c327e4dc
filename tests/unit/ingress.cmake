# tests/unit/ingress.cmake: cmocka unit tests of the ingress modules (pure functions, no I/O).
foreach(t request phone webhook config event_id peers admit console_params events_hub events_notify)
  callpipe_unit_test(NAME test_ingress_${t} SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_ingress_${t}.c
                     LIBS ingress_lib)
endforeach()
