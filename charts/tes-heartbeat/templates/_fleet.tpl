{{/* The fleet's container, shared by the DaemonSet (mode "node"), the Deployment ("cluster")
and the uninstall hook's Job ("release": `fleet --release-finalizers`, no TES token, no listener):
(dict "root" $ "mode" "node") */}}

{{/* The fleet's CA ConfigMap (release namespace): the chart's (tes.caBundle) or the user's. */}}
{{- define "tes-heartbeat.fleetCaConfigMap" -}}
{{- if .Values.tes.caBundle -}}
{{- dict "name" (printf "%s-tes-ca" (include "tes-heartbeat.fullname" .)) "key" "ca.crt" | toJson -}}
{{- else -}}
{{- include "tes-heartbeat.caConfigMap" . -}}
{{- end -}}
{{- end -}}

{{/* The fleet's pod volumes: the TES CA and the token file, from the release namespace. */}}
{{- define "tes-heartbeat.fleetVolumes" -}}
{{- $ca := include "tes-heartbeat.fleetCaConfigMap" . | fromJson -}}
{{- $token := include "tes-heartbeat.tokenSecret" . | fromJson -}}
{{- with $ca.name }}
- name: tes-ca
  configMap:
    name: {{ . }}
    items:
      - key: {{ $ca.key }}
        path: {{ $ca.key }}
{{- end }}
{{- if and $token.name $token.asFile }}
- name: tes-token
  secret:
    secretName: {{ $token.name }}
    items:
      - key: {{ $token.key }}
        path: token
{{- end }}
{{- end -}}

{{- define "tes-heartbeat.fleetContainer" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $release := eq .mode "release" -}}
{{- $ca := include "tes-heartbeat.fleetCaConfigMap" $root | fromJson -}}
{{- $token := include "tes-heartbeat.tokenSecret" $root | fromJson -}}
{{- $port := "" -}}
{{- if ne $v.fleet.httpAddr "off" -}}
{{- $port = regexReplaceAll "^.*:([0-9]+)$" $v.fleet.httpAddr "${1}" -}}
{{- end -}}
name: {{ ternary "release-finalizers" "fleet" $release }}
image: {{ include "tes-heartbeat.image" $root }}
imagePullPolicy: {{ $v.image.pullPolicy }}
args: {{ ternary "[fleet, --release-finalizers]" "[fleet]" $release }}
env:
  - name: TES_URL
    value: {{ include "tes-heartbeat.tesUrl" $root | quote }}
{{- if include "tes-heartbeat.ownEmulator" $root }}
  # The chart's own emulator answers plain http inside the cluster (rule T6's one exception).
  - name: TES_ALLOW_HTTP
    value: "true"
{{- end }}
{{- if not $release }}
{{- if and $token.name $token.asFile }}
  - name: TES_TOKEN_FILE
    value: /etc/tes-heartbeat/tes-token/token
{{- else if $token.name }}
  - name: TES_TOKEN
    valueFrom:
      secretKeyRef:
        name: {{ $token.name }}
        key: {{ $token.key }}
        optional: {{ $token.optional }}
{{- end }}
{{- with $ca.key }}
  - name: TES_CA_FILE
    value: /etc/tes-heartbeat/tes-ca/{{ . }}
{{- end }}
  - name: HEARTBEAT_INTERVAL
    value: {{ $v.heartbeat.interval | quote }}
  - name: HEARTBEAT_TIMEOUT
    value: {{ $v.heartbeat.timeout | quote }}
  - name: HEARTBEAT_MIN_GAP
    value: {{ $v.heartbeat.minGap | quote }}
  - name: FINAL_HEARTBEAT_DEADLINE
    value: {{ $v.heartbeat.finalDeadline | quote }}
  - name: HARDWARE_DETAILS
    value: {{ $v.hardwareDetails | quote }}
  - name: FLEET_MAX_IN_FLIGHT
    value: {{ $v.fleet.maxInFlight | quote }}
  - name: FLEET_NONCE_SECRETS
    value: {{ ternary "on" "off" $v.fleet.nonceSecrets | quote }}
{{- end }}
  # Pods that carry an agent container are left to their sidecar.
  - name: AGENT_CONTAINER_NAME
    value: {{ $v.sidecar.containerName | quote }}
  - name: EVENTS
    value: {{ ternary "on" "off" (and $v.events.enabled (not $release)) | quote }}
  - name: HTTP_ADDR
    value: {{ ternary "off" $v.fleet.httpAddr $release | quote }}
  - name: LOG_LEVEL
    value: {{ $v.logLevel | quote }}
  - name: LOG_FORMAT
    value: {{ $v.logFormat | quote }}
  - name: POD_NAME
    valueFrom:
      fieldRef:
        fieldPath: metadata.name
  - name: POD_NAMESPACE
    valueFrom:
      fieldRef:
        fieldPath: metadata.namespace
{{- if eq .mode "node" }}
  - name: FLEET_NODE_NAME
    valueFrom:
      fieldRef:
        fieldPath: spec.nodeName
{{- end }}
  - name: FLEET_NAMESPACES
    value: {{ include "tes-heartbeat.taskNamespaces" $root | fromJsonArray | join "," | quote }}
  - name: FLEET_SELECTOR
    value: {{ $v.fleet.selector | quote }}
  - name: FLEET_FINALIZER
    value: {{ ternary "on" "off" (or $v.fleet.finalizer $release) | quote }}
{{- if not $release }}
  - name: FLEET_FINALIZER_TIMEOUT
    value: {{ $v.fleet.finalizerTimeout | quote }}
{{- end }}
{{- if eq .mode "cluster" }}
  - name: FLEET_LEASE
    value: {{ $v.fleet.lease.name | quote }}
  - name: FLEET_LEASE_DURATION
    value: {{ $v.fleet.lease.duration | quote }}
  - name: FLEET_RENEW_DEADLINE
    value: {{ $v.fleet.lease.renewDeadline | quote }}
  - name: FLEET_RETRY_PERIOD
    value: {{ $v.fleet.lease.retryPeriod | quote }}
{{- end }}
{{- if and $port (not $release) }}
ports:
  - name: metrics
    containerPort: {{ $port }}
    protocol: TCP
readinessProbe:
  httpGet:
    path: /readyz
    port: metrics
  periodSeconds: 5
livenessProbe:
  httpGet:
    path: /healthz
    port: metrics
  periodSeconds: 10
  failureThreshold: 3
{{- end }}
resources:
  {{- toYaml $v.fleet.resources | nindent 2 }}
securityContext:
  {{- include "tes-heartbeat.containerSecurityContext" $root | nindent 2 }}
{{- if and (not $release) (or $ca.name (and $token.name $token.asFile)) }}
volumeMounts:
{{- if $ca.name }}
  - name: tes-ca
    mountPath: /etc/tes-heartbeat/tes-ca
    readOnly: true
{{- end }}
{{- if and $token.name $token.asFile }}
  - name: tes-token
    mountPath: /etc/tes-heartbeat/tes-token
    readOnly: true
{{- end }}
{{- end }}
{{- end -}}
