{{/* The agent's object name. */}}
{{- define "moat.name" -}}
{{- default "moat-node" .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "moat.labels" -}}
app.kubernetes.io/name: moat
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "moat.selectorLabels" -}}
app.kubernetes.io/name: moat
app.kubernetes.io/component: node-agent
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "moat.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end -}}
{{- end -}}
