#!/usr/bin/env bash
# As the Kafka distribution's bin/kafka-broker-api-versions.sh, which docker-compose.yml's
# healthcheck runs: the same tool class, from the kafka-tools jar.
set -euo pipefail
exec java -Xmx128m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
  -Dlog4j2.configurationFile=/opt/kafka/config/tools-log4j2.yaml -cp '/opt/kafka/libs/*' \
  org.apache.kafka.tools.BrokerApiVersionsCommand "$@"
