{{/* Names and labels. */}}
{{- define "relay.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "relay.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "relay.selectorLabels" -}}
app.kubernetes.io/name: {{ include "relay.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: intake
{{- end }}

{{- define "relay.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "relay.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "relay.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "relay.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "relay.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "relay.basicSecretName" -}}
{{- default (printf "%s-basic-auth" (include "relay.fullname" .)) .Values.auth.existingSecret }}
{{- end }}

{{/* The key holding relay's accepted pairs: the user's for their Secret, else the chart's. */}}
{{- define "relay.basicSecretKey" -}}
{{- ternary .Values.auth.existingSecretKey "credentials" (ne .Values.auth.existingSecret "") }}
{{- end }}

{{/* Ports and timings read from config, with relay's own defaults. */}}
{{- define "relay.intakePort" -}}
{{- int (default 8080 (dig "server" "port" 8080 .Values.config)) }}
{{- end }}

{{- define "relay.adminPort" -}}
{{- $port := int (dig "server" "admin_port" 9090 .Values.config) }}
{{- if eq $port 0 }}
{{- fail "config.server.admin_port must not be 0 in Kubernetes: probes and metrics need their own port" }}
{{- end }}
{{- $port }}
{{- end }}

{{- define "relay.terminationGracePeriodSeconds" -}}
{{- $grace := ceil (dig "server" "shutdown_grace_seconds" 25 .Values.config) | int }}
{{- add $grace .Values.termination.preStopSleepSeconds .Values.termination.marginSeconds }}
{{- end }}

{{/*
The configuration relay reads: .Values.config plus what the chart's own values imply
(credentials file, Kafka security, spool). Returned as YAML, parsed back by callers.
*/}}
{{- define "relay.config" -}}
{{- $config := deepCopy .Values.config }}
{{- $auth := default (dict) (get $config "auth") }}
{{- $_ := set $auth "basic_credentials_file" "/etc/relay/secrets/basic/credentials" }}
{{- $_ := set $config "auth" $auth }}
{{- $kafka := default (dict) (get $config "kafka") }}
{{- $lib := default (dict) (get $kafka "librdkafka") }}
{{- if .Values.kafka.sasl.enabled }}
{{- $_ := set $lib "security.protocol" .Values.kafka.sasl.securityProtocol }}
{{- $_ := set $lib "sasl.mechanism" .Values.kafka.sasl.mechanism }}
{{- else if .Values.kafka.tls.enabled }}
{{- $_ := set $lib "security.protocol" "SSL" }}
{{- end }}
{{- if .Values.kafka.tls.caSecret }}
{{- $_ := set $lib "ssl.ca.location" (printf "/etc/relay/secrets/kafka-ca/%s" .Values.kafka.tls.caKey) }}
{{- end }}
{{- if .Values.kafka.tls.clientCertSecret }}
{{- $_ := set $lib "ssl.certificate.location" "/etc/relay/secrets/kafka-client/tls.crt" }}
{{- $_ := set $lib "ssl.key.location" "/etc/relay/secrets/kafka-client/tls.key" }}
{{- end }}
{{- $_ := set $kafka "librdkafka" $lib }}
{{- $_ := set $config "kafka" $kafka }}
{{- if .Values.spool.enabled }}
{{- if gt (int (dig "server" "workers" 1 $config)) 1 }}
{{- fail "spool.enabled needs config.server.workers = 1 (one writer per spool directory); scale with replicas" }}
{{- end }}
{{- $spool := default (dict) (get $config "spool") }}
{{- $_ := set $spool "enabled" true }}
{{- $_ := set $spool "directory" .Values.spool.directory }}
{{- $_ := set $config "spool" $spool }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{/*
TOML rendering. Helm's toToml writes every number as a float ("port = 8080.0"), which
relay rightly refuses for integer settings, so the chart renders TOML itself: whole
numbers as integers, strings JSON-quoted (a valid TOML basic string), tables sorted.
*/}}
{{- define "relay.toml.key" -}}
{{- if regexMatch "^[A-Za-z0-9_-]+$" . }}{{ . }}{{ else }}{{ toJson . }}{{ end }}
{{- end }}

{{- define "relay.toml.value" -}}
{{- $v := . }}
{{- if kindIs "string" $v }}{{ toJson $v }}
{{- else if kindIs "bool" $v }}{{ $v }}
{{- else if kindIs "float64" $v }}{{ if eq (floor $v) $v }}{{ int64 $v }}{{ else }}{{ $v }}{{ end }}
{{- else if or (kindIs "int" $v) (kindIs "int64" $v) }}{{ $v }}
{{- else if kindIs "slice" $v }}[{{ range $i, $e := $v }}{{ if $i }}, {{ end }}{{ include "relay.toml.value" $e }}{{ end }}]
{{- else if kindIs "map" $v }}{ {{- range $i, $k := keys $v | sortAlpha }}{{ if $i }},{{ end }} {{ include "relay.toml.key" $k }} = {{ include "relay.toml.value" (get $v $k) }}{{ end }} }
{{- else }}{{ fail (printf "relay.toml: cannot render %v (%s)" $v (kindOf $v)) }}
{{- end }}
{{- end }}

{{- define "relay.toml.table" -}}
{{- $table := .table }}
{{- $path := .path }}
{{- range $k, $v := $table }}
{{- if not (or (kindIs "map" $v) (kindIs "invalid" $v)) }}
{{ include "relay.toml.key" $k }} = {{ include "relay.toml.value" $v }}
{{- end }}
{{- end }}
{{- range $k, $v := $table }}
{{- if kindIs "map" $v }}
{{- $name := include "relay.toml.key" $k }}
{{- $full := ternary $name (printf "%s.%s" $path $name) (eq $path "") }}

[{{ $full }}]
{{- include "relay.toml.table" (dict "table" $v "path" $full) }}
{{- end }}
{{- end }}
{{- end }}

{{/* The pod spec shared by the Deployment and the StatefulSet. */}}
{{- define "relay.podTemplate" -}}
metadata:
  labels:
    {{- include "relay.selectorLabels" . | nindent 4 }}
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    # A config change rolls the pods: relay reads relay.toml only at start-up.
    checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "relay.serviceAccountName" . }}
  # relay never talks to the Kubernetes API.
  automountServiceAccountToken: false
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  securityContext:
    {{- toYaml .Values.podSecurityContext | nindent 4 }}
  terminationGracePeriodSeconds: {{ include "relay.terminationGracePeriodSeconds" . }}
  containers:
    - name: relay
      image: {{ include "relay.image" . | quote }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args: ["serve", "--config", "/etc/relay/relay.toml"]
      {{- include "relay.env" (dict "root" .) | nindent 6 }}
      ports:
        - name: http
          containerPort: {{ include "relay.intakePort" . }}
          protocol: TCP
        - name: admin
          containerPort: {{ include "relay.adminPort" . }}
          protocol: TCP
      startupProbe:
        httpGet:
          path: /healthz
          port: admin
        {{- toYaml .Values.probes.startup | nindent 8 }}
      livenessProbe:
        httpGet:
          path: /healthz
          port: admin
        {{- toYaml .Values.probes.liveness | nindent 8 }}
      readinessProbe:
        # 503 while Kafka is unreachable or while draining: no deliveries are sent to a pod
        # that could not acknowledge them.
        httpGet:
          path: /readyz
          port: admin
        {{- toYaml .Values.probes.readiness | nindent 8 }}
      lifecycle:
        preStop:
          exec:
            command: ["sleep", "{{ .Values.termination.preStopSleepSeconds }}"]
      resources:
        {{- toYaml .Values.resources | nindent 8 }}
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      volumeMounts:
        {{- include "relay.volumeMounts" . | nindent 8 }}
        {{- if .Values.spool.enabled }}
        - name: spool
          mountPath: {{ .Values.spool.directory }}
        {{- end }}
  volumes:
    {{- include "relay.volumes" . | nindent 4 }}
  {{- with .Values.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- range . }}
    - {{ toYaml (merge (dict "labelSelector" (dict "matchLabels" (include "relay.selectorLabels" $ | fromYaml))) .) | nindent 6 | trim }}
    {{- end }}
  {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/* Environment: secrets come from Secrets, never from values. */}}
{{- define "relay.env" -}}
{{- with include (default "relay.envVars" .envVars) .root | trim -}}
env:
  {{- . | nindent 2 }}
{{- end }}
{{- end }}

{{- define "relay.envVars" -}}
{{- include "relay.kafkaEnvVars" . }}
{{- if .Values.ultracart.simpleKey.existingSecret }}
# Read by the [ultracart] status poller (simple_key_env defaults to this name).
- name: ULTRACART_SIMPLE_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.ultracart.simpleKey.existingSecret }}
      key: {{ .Values.ultracart.simpleKey.key }}
{{- end }}
{{- if .Values.tls.enabled }}
# HTTPS on the intake port from the mounted kubernetes.io/tls Secret. kubelet updates the
# files in place when the certificate is renewed, and relay re-reads them without a restart.
- name: RELAY_SERVER__TLS_CERT_FILE
  value: /etc/relay/tls/tls.crt
- name: RELAY_SERVER__TLS_KEY_FILE
  value: /etc/relay/tls/tls.key
{{- end }}
{{- if .Values.auth.signature.existingSecret }}
- name: RELAY_AUTH__SIGNATURE__SECRETS
  valueFrom:
    secretKeyRef:
      name: {{ .Values.auth.signature.existingSecret }}
      key: {{ .Values.auth.signature.existingSecretKey }}
{{- end }}
{{- end }}

{{/* What any relay command that talks to Kafka needs (serve, create-topics). */}}
{{- define "relay.kafkaEnvVars" -}}
{{- if .Values.kafka.sasl.enabled }}
{{- if not .Values.kafka.sasl.existingSecret }}
{{- fail "kafka.sasl.existingSecret is required when kafka.sasl.enabled" }}
{{- end }}
- name: RELAY_KAFKA__LIBRDKAFKA__SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ .Values.kafka.sasl.existingSecret }}
      key: {{ .Values.kafka.sasl.usernameKey }}
- name: RELAY_KAFKA__LIBRDKAFKA__SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.kafka.sasl.existingSecret }}
      key: {{ .Values.kafka.sasl.passwordKey }}
{{- end }}
{{- with .Values.extraEnv }}
{{- toYaml . | nindent 0 }}
{{- end }}
{{- end }}

{{- define "relay.volumeMounts" -}}
- name: config
  mountPath: /etc/relay/relay.toml
  subPath: relay.toml
  readOnly: true
- name: basic-auth
  mountPath: /etc/relay/secrets/basic
  readOnly: true
{{- if .Values.kafka.tls.caSecret }}
- name: kafka-ca
  mountPath: /etc/relay/secrets/kafka-ca
  readOnly: true
{{- end }}
{{- if .Values.kafka.tls.clientCertSecret }}
- name: kafka-client
  mountPath: /etc/relay/secrets/kafka-client
  readOnly: true
{{- end }}
{{- if .Values.tls.enabled }}
- name: tls
  mountPath: /etc/relay/tls
  readOnly: true
{{- end }}
- name: tmp
  mountPath: /tmp
{{- end }}

{{- define "relay.volumes" -}}
- name: config
  configMap:
    name: {{ include "relay.fullname" . }}
- name: basic-auth
  secret:
    secretName: {{ include "relay.basicSecretName" . }}
    # Mounted as a directory (no subPath) so kubelet updates the file when the Secret
    # changes and relay picks up rotated pairs without a restart.
    items:
      - key: {{ include "relay.basicSecretKey" . }}
        path: credentials
    defaultMode: 0440
{{- if .Values.kafka.tls.caSecret }}
- name: kafka-ca
  secret:
    secretName: {{ .Values.kafka.tls.caSecret }}
    items:
      - key: {{ .Values.kafka.tls.caKey }}
        path: {{ .Values.kafka.tls.caKey }}
    defaultMode: 0440
{{- end }}
{{- if .Values.kafka.tls.clientCertSecret }}
- name: kafka-client
  secret:
    secretName: {{ .Values.kafka.tls.clientCertSecret }}
    defaultMode: 0440
{{- end }}
{{- if .Values.tls.enabled }}
{{- if not .Values.tls.secretName }}
{{- fail "tls.secretName is required when tls.enabled: a kubernetes.io/tls Secret (cert-manager's Certificate writes one)" }}
{{- end }}
- name: tls
  secret:
    secretName: {{ .Values.tls.secretName }}
    # A whole-directory mount (no subPath): kubelet swaps renewed files in place.
    items:
      - key: tls.crt
        path: tls.crt
      - key: tls.key
        path: tls.key
    defaultMode: 0440
{{- end }}
# /tmp: the only writable path besides volumes. With config.server.workers > 1 relay
# keeps its per-worker Prometheus files here (about 1 MiB per metric type per worker).
- name: tmp
  emptyDir:
    sizeLimit: 256Mi
{{- end }}
