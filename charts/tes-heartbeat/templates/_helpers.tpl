{{/* Names, labels and the one sidecar spec every other template reuses. */}}

{{- define "tes-heartbeat.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "tes-heartbeat.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tes-heartbeat
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "webhook") */}}
{{- define "tes-heartbeat.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* A Deployment's pod labels: podLabels, under the chart's (which the selector needs and which win):
(dict "root" $ "component" "webhook" "extra" .Values.webhook.podLabels) */}}
{{- define "tes-heartbeat.podLabels" -}}
{{- $own := include "tes-heartbeat.labels" .root | fromYaml -}}
{{- $_ := set $own "app.kubernetes.io/component" .component -}}
{{- toYaml (merge $own (deepCopy (.extra | default dict))) -}}
{{- end -}}

{{/* imagePullSecrets' names, comma-separated (SIDECAR_IMAGE_PULL_SECRETS). */}}
{{- define "tes-heartbeat.pullSecretNames" -}}
{{- $names := list -}}
{{- range .Values.imagePullSecrets }}{{ $names = append $names .name }}{{ end -}}
{{- join "," $names -}}
{{- end -}}

{{- define "tes-heartbeat.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* Task namespaces as a list; empty means the release namespace alone. */}}
{{- define "tes-heartbeat.taskNamespaces" -}}
{{- $namespaces := .Values.taskNamespaces | default (list .Release.Namespace) | uniq -}}
{{- toJson $namespaces -}}
{{- end -}}

{{/* Fixed names in the task namespaces: the snippet is one spec for every namespace. */}}
{{- define "tes-heartbeat.taskName" -}}tes-heartbeat{{- end -}}
{{- define "tes-heartbeat.settingsName" -}}tes-heartbeat-settings{{- end -}}

{{/*
What must hold before anything renders (a template `fail`: helm install and helm template stop
with this message, before a single object is applied).
*/}}
{{- define "tes-heartbeat.validate" -}}
{{- if not (or .Values.tes.url .Values.emulator.enabled) -}}
{{- fail "tes.url is required: set tes.url to your TES's base URL (or emulator.enabled=true for development). Without a TES every injected agent would stop with exit code 2." -}}
{{- end -}}
{{- if and .Values.tes.caBundle .Values.tes.caConfigMap.name -}}
{{- fail "tes.caBundle and tes.caConfigMap.name are both set: give the TES CA one way (a PEM bundle the chart renders, or an existing ConfigMap)" -}}
{{- end -}}
{{- end -}}

{{- define "tes-heartbeat.tesUrl" -}}
{{- if .Values.tes.url -}}
{{- .Values.tes.url -}}
{{- else if .Values.emulator.enabled -}}
{{- printf "http://%s-emulator.%s.svc:8080" (include "tes-heartbeat.fullname" .) .Release.Namespace -}}
{{- end -}}
{{- end -}}

{{/* The hardened securityContext shared by the sidecar and the chart's own pods. */}}
{{- define "tes-heartbeat.containerSecurityContext" -}}
runAsNonRoot: true
{{- include "tes-heartbeat.runAs" . }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Fixed ids, unless null (OpenShift's restricted SCC assigns its own and rejects others). */}}
{{- define "tes-heartbeat.runAs" -}}
{{- with .Values.securityContext.runAsUser }}
runAsUser: {{ . }}
{{- end }}
{{- with .Values.securityContext.runAsGroup }}
runAsGroup: {{ . }}
{{- end }}
{{- end -}}

{{- define "tes-heartbeat.podSecurityContext" -}}
runAsNonRoot: true
{{- include "tes-heartbeat.runAs" . }}
{{- with .Values.securityContext.runAsGroup }}
fsGroup: {{ . }}
{{- end }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Where the sidecar finds the TES CA: the chart's ConfigMap (tes.caBundle) or the user's. */}}
{{- define "tes-heartbeat.caConfigMap" -}}
{{- if .Values.tes.caBundle -}}
{{- dict "name" "tes-heartbeat-tes-ca" "key" "ca.crt" | toJson -}}
{{- else if .Values.tes.caConfigMap.name -}}
{{- dict "name" .Values.tes.caConfigMap.name "key" .Values.tes.caConfigMap.key | toJson -}}
{{- else -}}
{}
{{- end -}}
{{- end -}}

{{/*
The pod volumes the sidecar mounts (rule I1): published beside the snippet as volumes.yaml, and
added by the webhook to each injected pod that lacks them. Names start with tes-heartbeat-.
*/}}
{{- define "tes-heartbeat.sidecarVolumes" -}}
{{- $ca := include "tes-heartbeat.caConfigMap" . | fromJson -}}
{{- $token := .Values.tes.tokenSecret -}}
{{- if or $ca.name (and $token.name $token.asFile) -}}
{{- with $ca.name }}
- name: tes-heartbeat-tes-ca
  configMap:
    name: {{ . }}
    items:
      - key: {{ $ca.key }}
        path: {{ $ca.key }}
{{- end }}
{{- if and $token.name $token.asFile }}
- name: tes-heartbeat-tes-token
  secret:
    secretName: {{ $token.name }}
    items:
      - key: {{ $token.key }}
        path: token
{{- end }}
{{- else -}}
[]
{{- end -}}
{{- end -}}

{{/* The agent's listener port, from sidecar.httpAddr (empty for `off`). */}}
{{- define "tes-heartbeat.sidecarPort" -}}
{{- if ne .Values.sidecar.httpAddr "off" -}}
{{- regexReplaceAll "^.*:([0-9]+)$" .Values.sidecar.httpAddr "${1}" -}}
{{- end -}}
{{- end -}}

{{/*
The sidecar container, rendered once: published in the snippet ConfigMap and NOTES, and the
template the webhook injects (it mounts that same ConfigMap). No restartPolicy: native mode
adds `restartPolicy: Always` (the webhook does it itself; by hand, see native-sidecar.yaml).
No /tmp volume: the agent writes nothing but TES_JWT_FILE, which the chart does not set.
Its volumes are volumes.yaml's; HTTP_ADDR is set here, not in the settings ConfigMap, so that
the webhook sees the port it must keep clear of the task's.
*/}}
{{- define "tes-heartbeat.sidecar" -}}
{{- $ca := include "tes-heartbeat.caConfigMap" . | fromJson -}}
{{- $port := include "tes-heartbeat.sidecarPort" . -}}
name: {{ .Values.sidecar.containerName }}
image: {{ include "tes-heartbeat.image" . }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
args: [agent]
envFrom:
  - configMapRef:
      name: {{ include "tes-heartbeat.settingsName" . }}
env:
  - name: TES_RUN_ID
    valueFrom:
      fieldRef:
        fieldPath: "metadata.annotations['tes-heartbeat/run-id']"
  - name: TES_NONCE
    valueFrom:
      fieldRef:
        fieldPath: "metadata.annotations['tes-heartbeat/nonce']"
  - name: POD_NAME
    valueFrom:
      fieldRef:
        fieldPath: metadata.name
  - name: POD_NAMESPACE
    valueFrom:
      fieldRef:
        fieldPath: metadata.namespace
  - name: HTTP_ADDR
    value: {{ .Values.sidecar.httpAddr | quote }}
{{- with .Values.tes.tokenSecret }}
{{- if and .name .asFile }}
  - name: TES_TOKEN_FILE
    value: /etc/tes-heartbeat/tes-token/token
{{- else if .name }}
  - name: TES_TOKEN
    valueFrom:
      secretKeyRef:
        name: {{ .name }}
        key: {{ .key }}
        optional: {{ .optional }}
{{- end }}
{{- end }}
{{- with $ca.key }}
  - name: TES_CA_FILE
    value: /etc/tes-heartbeat/tes-ca/{{ . }}
{{- end }}
{{- with $port }}
ports:
  - name: {{ include "tes-heartbeat.metricsPortName" $ }}
    containerPort: {{ . }}
    protocol: TCP
{{- end }}
resources:
  {{- toYaml .Values.sidecar.resources | nindent 2 }}
securityContext:
  {{- include "tes-heartbeat.containerSecurityContext" . | nindent 2 }}
{{- if or $ca.name (and .Values.tes.tokenSecret.name .Values.tes.tokenSecret.asFile) }}
volumeMounts:
{{- if $ca.name }}
  - name: tes-heartbeat-tes-ca
    mountPath: /etc/tes-heartbeat/tes-ca
    readOnly: true
{{- end }}
{{- if and .Values.tes.tokenSecret.name .Values.tes.tokenSecret.asFile }}
  - name: tes-heartbeat-tes-token
    mountPath: /etc/tes-heartbeat/tes-token
    readOnly: true
{{- end }}
{{- end }}
{{- end -}}
