# tests/unit/dialer.cmake: cmocka unit tests of the dialer modules (pure functions, no I/O).
foreach(t prompt policy config sweeper elevenlabs)
  callpipe_unit_test(NAME test_dialer_${t} SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_dialer_${t}.c
                     LIBS dialer_lib)
endforeach()
