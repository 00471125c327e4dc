# tests/unit/common.cmake: cmocka unit tests of the common library (no broker, no database).
foreach(t log cfg cfg_shared metrics codec codec_decode_errors sig calltoken timeutil backoff httpd
    shutdown kbus_conf strmap)
  callpipe_unit_test(NAME test_${t} SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_${t}.c)
endforeach()
# The httpd test talks HTTP to the health server through libcurl.
target_link_libraries(test_httpd PRIVATE PkgConfig::LIBCURL)
# The offset tracker's test makes an allocation fail through the linker (--wrap: only this binary
# sees the wrapper).
callpipe_unit_test(NAME test_offtrack SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_offtrack.c)
target_link_options(test_offtrack PRIVATE -Wl,--wrap=realloc)
