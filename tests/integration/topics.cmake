# tests/integration/topics.cmake: the topic definition and its checks (tools/topics, kbus_topics).
callpipe_integration_test(NAME test_topics
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_topics.c TIMEOUT 120)
add_dependencies(test_topics topics ingress dialer transcriber devbroker)
callpipe_kafka_variant(test_topics)
