# tests/integration/dialer.cmake: the real dialer and elevensim against private devbrokers, test
# schemas in the throwaway Postgres, and each other. The tests that need no devbroker fault
# injection run once more on real Kafka (the kafka tier).
add_library(dialer_it STATIC ${CMAKE_CURRENT_LIST_DIR}/dialer_it.c)
target_link_libraries(dialer_it PUBLIC callpipe_testsupport callpipe_common PkgConfig::CMOCKA)
target_include_directories(dialer_it PUBLIC ${CMAKE_CURRENT_LIST_DIR})

foreach(t calls flow crash scale sweep dbdown)
  callpipe_integration_test(NAME test_dialer_${t}
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_dialer_${t}.c LIBS dialer_it TIMEOUT 180)
  add_dependencies(test_dialer_${t} dialer elevensim devbroker migrate)
endforeach()
foreach(t flow crash scale)
  callpipe_kafka_variant(test_dialer_${t})
endforeach()

# A gateway error after sending: the whole webhook path (elevensim -> ingress -> transcriber).
callpipe_integration_test(NAME test_dialer_gateway
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_dialer_gateway.c LIBS dialer_it ingress_it TIMEOUT 180)
add_dependencies(test_dialer_gateway dialer elevensim ingress transcriber devbroker migrate)

# Both elevensim tests share the webhook receiver and helpers in test_elevensim_util.c.
foreach(t elevensim elevensim_webhooks)
  callpipe_integration_test(NAME test_${t}
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_${t}.c ${CMAKE_CURRENT_LIST_DIR}/test_elevensim_util.c
    LIBS dialer_it PkgConfig::MHD TIMEOUT 120)
  add_dependencies(test_${t} elevensim)
endforeach()
