# tests/unit/transcriber.cmake: cmocka unit tests of the transcriber's pure modules.
foreach(t process park msg scan ahead)
  callpipe_unit_test(NAME test_transcriber_${t}
                     SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_transcriber_${t}.c
                     LIBS transcriber_lib)
endforeach()
