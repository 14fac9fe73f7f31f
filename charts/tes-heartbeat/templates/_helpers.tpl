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

{{/* Task namespaces as a list (required, checked by tes-heartbeat.validate). */}}
{{- define "tes-heartbeat.taskNamespaces" -}}
{{- toJson (.Values.taskNamespaces | default list | uniq) -}}
{{- end -}}

{{- define "tes-heartbeat.fleetMode" -}}{{ if eq .Values.mode "fleet" }}true{{ end }}{{- end -}}

{{/* The webhook runs in sidecar mode only. */}}
{{- define "tes-heartbeat.webhookEnabled" -}}
{{- if and .Values.webhook.enabled (ne .Values.mode "fleet") }}true{{ end -}}
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
{{- /* Rule T3: where tasks may run. */ -}}
{{- if not .Values.taskNamespaces -}}
{{- fail "taskNamespaces is required: name the namespaces where task pods run (--set 'taskNamespaces={tasks}'). Never the release namespace: it holds the webhook's serving key." -}}
{{- end -}}
{{- range .Values.taskNamespaces -}}
{{- if eq . $.Release.Namespace -}}
{{- fail (printf "taskNamespaces must not contain the release namespace %q: it holds the webhook's serving key and the chart's Secrets; install the chart into a namespace of its own" .) -}}
{{- end -}}
{{- if has . (list "kube-system" "kube-public" "kube-node-lease") -}}
{{- fail (printf "taskNamespaces must not contain %q: task pods never run in a kube-* namespace" .) -}}
{{- end -}}
{{- end -}}
{{- if has "default" .Values.taskServiceAccounts -}}
{{- fail "taskServiceAccounts must not contain \"default\": every pod of the namespace runs as it and would get the agent's Role; let task pods run as tes-heartbeat (or an account of their own)" -}}
{{- end -}}
{{- /* Rule T6: the agents refuse a bearer over plain http (exit 2 in every task pod). */ -}}
{{- if and (hasPrefix "http://" .Values.tes.url) .Values.tes.tokenSecret.name -}}
{{- fail "tes.url is http:// while tes.tokenSecret.name is set: the agents never send a bearer over plain HTTP (they would exit 2); use an https:// TES URL" -}}
{{- end -}}
{{- /* Rule T7: the agents' token comes with the emulator's only when the chart made it (the
fleet, beside the emulator in the release namespace, reads the emulator's Secret itself). */ -}}
{{- if and .Values.emulator.enabled (not .Values.tes.url) .Values.emulator.tokenSecret.name (not .Values.tes.tokenSecret.name) (ne .Values.mode "fleet") -}}
{{- fail "emulator.tokenSecret.name is set but tes.tokenSecret.name is not: the chart cannot copy a Secret it did not make; give the agents a Secret with the same token (tes.tokenSecret.name), or leave emulator.tokenSecret.name empty and let the chart generate the token" -}}
{{- end -}}
{{- /* The elector's timing, as the fleet checks it (it would exit 2 in every replica). */ -}}
{{- if and (eq .Values.mode "fleet") (eq .Values.fleet.scope "cluster") -}}
{{- $l := .Values.fleet.lease -}}
{{- $duration := include "tes-heartbeat.durationSeconds" $l.duration | float64 -}}
{{- $deadline := include "tes-heartbeat.durationSeconds" $l.renewDeadline | float64 -}}
{{- $retry := include "tes-heartbeat.durationSeconds" $l.retryPeriod | float64 -}}
{{- if not (and (gt $duration $deadline) (gt $deadline (mulf $retry 1.2))) -}}
{{- fail (printf "fleet.lease: duration (%s) > renewDeadline (%s) > 1.2 x retryPeriod (%s) must hold: a leader must stop before a standby may take the lease, and a standby's tries are jittered by up to 1.2 x the period" $l.duration $l.renewDeadline $l.retryPeriod) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A duration of the settings (1m30s, 1.5s, 500ms) in seconds. */}}
{{- define "tes-heartbeat.durationSeconds" -}}
{{- $units := dict "ms" 0.001 "s" 1.0 "m" 60.0 "h" 3600.0 -}}
{{- $total := 0.0 -}}
{{- range regexFindAll "[0-9]+(\\.[0-9]+)?(ms|s|m|h)" . -1 -}}
{{- $number := regexFind "^[0-9]+(\\.[0-9]+)?" . -}}
{{- $total = addf $total (mulf (float64 $number) (get $units (trimPrefix $number .))) -}}
{{- end -}}
{{- $total -}}
{{- end -}}

{{/* The chart's own in-cluster emulator is the agents' TES (emulator.enabled, no tes.url). */}}
{{- define "tes-heartbeat.ownEmulator" -}}
{{- if and .Values.emulator.enabled (not .Values.tes.url) }}true{{ end -}}
{{- end -}}

{{/* The emulator's token Secret: the user's (emulator.tokenSecret.name) or the chart's. */}}
{{- define "tes-heartbeat.emulatorTokenSecret" -}}
{{- .Values.emulator.tokenSecret.name | default (printf "%s-emulator-token" (include "tes-heartbeat.fullname" .)) -}}
{{- end -}}

{{/* The chart-generated emulator token: the one in the cluster if any (lookup), else new. */}}
{{- define "tes-heartbeat.emulatorToken" -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "tes-heartbeat.emulatorTokenSecret" .) -}}
{{- if and $existing $existing.data (index $existing.data "token") -}}
{{- index $existing.data "token" | b64dec -}}
{{- else -}}
{{- /* Once per render: the emulator's Secret and the agents' copies must hold the same one. */ -}}
{{- if not (hasKey .Values.emulator "generatedToken") -}}
{{- $_ := set .Values.emulator "generatedToken" (randAlphaNum 40) -}}
{{- end -}}
{{- .Values.emulator.generatedToken -}}
{{- end -}}
{{- end -}}

{{/*
The TES token Secret the agents (task namespaces) or the fleet (release namespace) read, as
JSON: tes.tokenSecret, or with the chart's own emulator the emulator's token (rule T7); {} for none.
*/}}
{{- define "tes-heartbeat.tokenSecret" -}}
{{- $t := .Values.tes.tokenSecret -}}
{{- if $t.name -}}
{{- dict "name" $t.name "key" $t.key "optional" $t.optional "asFile" $t.asFile | toJson -}}
{{- else if include "tes-heartbeat.ownEmulator" . -}}
{{- $name := ternary (include "tes-heartbeat.emulatorTokenSecret" .) "tes-heartbeat-emulator-token" (eq .Values.mode "fleet") -}}
{{- dict "name" $name "key" "token" "optional" false "asFile" $t.asFile | toJson -}}
{{- else -}}
{}
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
tes-heartbeat-kube-api-access is what the ServiceAccount admission plugin would add (rule T1):
the agent's own API token, while the task's ServiceAccount automounts none.
*/}}
{{- define "tes-heartbeat.sidecarVolumes" -}}
{{- $ca := include "tes-heartbeat.caConfigMap" . | fromJson -}}
{{- $token := include "tes-heartbeat.tokenSecret" . | fromJson -}}
- name: tes-heartbeat-kube-api-access
  projected:
    defaultMode: 420
    sources:
      - serviceAccountToken:
          path: token
          expirationSeconds: 3607
      - configMap:
          name: kube-root-ca.crt
          items:
            - key: ca.crt
              path: ca.crt
      - downwardAPI:
          items:
            - path: namespace
              fieldRef:
                apiVersion: v1
                fieldPath: metadata.namespace
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
{{- with include "tes-heartbeat.tokenSecret" . | fromJson }}
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
{{- $token := include "tes-heartbeat.tokenSecret" . | fromJson }}
volumeMounts:
  # The agent's own API token (rule T1), where client libraries look for it.
  - name: tes-heartbeat-kube-api-access
    mountPath: /var/run/secrets/kubernetes.io/serviceaccount
    readOnly: true
{{- if $ca.name }}
  - name: tes-heartbeat-tes-ca
    mountPath: /etc/tes-heartbeat/tes-ca
    readOnly: true
{{- end }}
{{- if and $token.name $token.asFile }}
  - name: tes-heartbeat-tes-token
    mountPath: /etc/tes-heartbeat/tes-token
    readOnly: true
{{- end }}
{{- end -}}
