# tests/integration/ingress.cmake: the real ingress binary against private devbrokers (and the
# throwaway Postgres for the read endpoint): what reaches the topics, outages, drain, limits.
# What reaches the topics is checked on real Kafka too (the kafka tier).
add_library(ingress_it STATIC ${CMAKE_CURRENT_LIST_DIR}/ingress_it.c)
target_link_libraries(ingress_it PUBLIC callpipe_testsupport callpipe_common PkgConfig::CMOCKA
                      PkgConfig::LIBCURL PkgConfig::CRYPTO PkgConfig::JANSSON)
target_include_directories(ingress_it PUBLIC ${CMAKE_CURRENT_LIST_DIR})

foreach(t publish outage lifecycle read listen hostile limits identity validation admin console)
  callpipe_integration_test(NAME test_ingress_${t}
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_ingress_${t}.c LIBS ingress_it TIMEOUT 120)
  add_dependencies(test_ingress_${t} ingress devbroker migrate)
endforeach()
callpipe_kafka_variant(test_ingress_publish)
callpipe_kafka_variant(test_ingress_read)
