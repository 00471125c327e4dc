# tests/unit/faults.cmake: a message its worker could not track must never be passed over.
#
# Unit tests: the transcriber's engine with allocation failures injected through the linker
# (--wrap: only this test binary sees the wrapper); the offset tracker's own are test_offtrack.
# Integration tests: the dialer and the transcriber built once more with the test-only fault
# injection of common/fault.h (CALLPIPE_FAULTS, tests/support/fault.c) as dialer-faults and
# transcriber-faults. The shipped binaries never contain it.
callpipe_unit_test(NAME test_transcriber_track
                   SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_transcriber_track.c
                   LIBS transcriber_lib)
target_link_options(test_transcriber_track PRIVATE -Wl,--wrap=realloc)

foreach(svc dialer transcriber)
  get_target_property(srcs ${svc}_lib SOURCES)
  list(TRANSFORM srcs PREPEND ${CMAKE_SOURCE_DIR}/${svc}/)
  add_library(${svc}_faults_lib STATIC ${srcs} ${CMAKE_SOURCE_DIR}/tests/support/fault.c)
  target_compile_definitions(${svc}_faults_lib PUBLIC CALLPIPE_FAULTS)
  target_include_directories(${svc}_faults_lib PUBLIC ${CMAKE_SOURCE_DIR}/${svc})
  target_link_libraries(${svc}_faults_lib PUBLIC callpipe_common)
  add_executable(${svc}-faults ${CMAKE_SOURCE_DIR}/${svc}/main.c)
  target_link_libraries(${svc}-faults PRIVATE ${svc}_faults_lib)
endforeach()
