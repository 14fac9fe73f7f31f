{{/* Names the monitoring objects share: the job labels the Prometheus operator gives their
targets are what the alerts select, so they are computed in one place. */}}

{{/* The agents' PodMonitor, or in fleet mode the fleet's. */}}
{{- define "tes-heartbeat.podMonitorName" -}}
{{- printf "%s-%s" (include "tes-heartbeat.fullname" .) (ternary "fleet" "agents" (eq .Values.mode "fleet")) -}}
{{- end -}}

{{/* A PodMonitor's targets get job="<its namespace>/<its name>". */}}
{{- define "tes-heartbeat.agentsJob" -}}
{{- printf "%s/%s" .Release.Namespace (include "tes-heartbeat.podMonitorName" .) -}}
{{- end -}}

{{/* A ServiceMonitor's targets get job="<the Service's name>"; the webhook's Service. */}}
{{- define "tes-heartbeat.webhookJob" -}}
{{- printf "%s-webhook" (include "tes-heartbeat.fullname" .) -}}
{{- end -}}

{{/* The sidecar's metrics port, by name (the PodMonitor selects it so). */}}
{{- define "tes-heartbeat.metricsPortName" -}}tes-hb-metrics{{- end -}}

{{/* Labels of a monitoring object: the chart's, then metrics.labels and the object's own
(the object's win): (dict "root" $ "own" .Values.metrics.podMonitor.labels) */}}
{{- define "tes-heartbeat.metricsLabels" -}}
{{- include "tes-heartbeat.labels" .root }}
{{- $extra := merge (deepCopy (.own | default dict)) (deepCopy (.root.Values.metrics.labels | default dict)) }}
{{- with $extra }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* A Prometheus duration (5m, 1h30m, 500ms) in seconds, for comparisons in PromQL (Prometheus
2.x has no duration literals outside range selectors). */}}
{{- define "tes-heartbeat.promSeconds" -}}
{{- $units := dict "ms" 0.001 "s" 1.0 "m" 60.0 "h" 3600.0 "d" 86400.0 "w" 604800.0 "y" 31536000.0 -}}
{{- $total := 0.0 -}}
{{- range regexFindAll "[0-9]+(ms|s|m|h|d|w|y)" . -1 -}}
{{- $number := regexFind "^[0-9]+" . -}}
{{- $total = addf $total (mulf (float64 $number) (get $units (trimPrefix $number .))) -}}
{{- end -}}
{{- $total -}}
{{- end -}}
