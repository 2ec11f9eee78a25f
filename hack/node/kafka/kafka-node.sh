#!/bin/sh
# The development Kafka image's entrypoint (installed as /usr/local/bin/kafka-node):
# JVM options from the environment, then orderpipeline.node.NodeKafka (NodeKafka.java).
#   kafka-node broker          the broker (default)
#   kafka-node create-topics   the topics Job
# KAFKA_HEAP_OPTS (default -Xms512m -Xmx512m) and KAFKA_JVM_OPTS are split on spaces.
set -eu
# No hsperfdata files (the root filesystem is read-only; /tmp is the only writable place);
# leave the JVM on an out-of-memory error so the kubelet restarts the container.
# shellcheck disable=SC2086  # the option variables are lists of words on purpose
exec java ${KAFKA_HEAP_OPTS:--Xms512m -Xmx512m} \
    -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError -XX:-UsePerfData \
    -Djava.awt.headless=true -Djava.io.tmpdir="${TMPDIR:-/tmp}" \
    -Dlog4j2.configurationFile=/opt/kafka/config/log4j2.properties \
    ${KAFKA_JVM_OPTS:-} \
    -cp '/opt/kafka/libs/*:/opt/kafka/node/node-kafka.jar' \
    orderpipeline.node.NodeKafka "$@"
