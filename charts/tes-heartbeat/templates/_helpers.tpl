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
runAsUser: 65532
runAsGroup: 65532
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "tes-heartbeat.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
The sidecar container, rendered once: published in the snippet ConfigMap and NOTES, and the
template the webhook injects (it mounts that same ConfigMap). No restartPolicy: native mode
adds `restartPolicy: Always` (the webhook does it itself; by hand, see native-sidecar.yaml).
No /tmp volume: the agent writes nothing but TES_JWT_FILE, which the chart does not set.
*/}}
{{- define "tes-heartbeat.sidecar" -}}
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
{{- with .Values.tes.tokenSecret }}
{{- if .name }}
  - name: TES_TOKEN
    valueFrom:
      secretKeyRef:
        name: {{ .name }}
        key: {{ .key }}
        optional: {{ .optional }}
{{- end }}
{{- end }}
resources:
  {{- toYaml .Values.sidecar.resources | nindent 2 }}
securityContext:
  {{- include "tes-heartbeat.containerSecurityContext" . | nindent 2 }}
{{- end -}}
