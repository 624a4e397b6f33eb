{{/* Prefix of every object name: the release name, with "-rdg" unless it has "rdg" in it. */}}
{{- define "rdg.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else if contains "rdg" .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-rdg" .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "rdg.controllerName" -}}
{{- printf "%s-controller" (include "rdg.fullname" .) -}}
{{- end -}}

{{- define "rdg.memberRoleName" -}}
{{- printf "%s-member" (include "rdg.fullname" .) -}}
{{- end -}}

{{/* ServiceAccount of the controller. */}}
{{- define "rdg.serviceAccountName" -}}
{{- default (include "rdg.controllerName" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* The image of the controller, and of member pods unless a group names another one. */}}
{{- define "rdg.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Namespaces that hold groups, one per line. */}}
{{- define "rdg.memberNamespaces" -}}
{{- if .Values.members.namespaces -}}
{{- range .Values.members.namespaces }}
{{ . }}
{{- end -}}
{{- else -}}
{{ default .Release.Namespace .Values.watchNamespace }}
{{- end -}}
{{- end -}}

{{- define "rdg.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: rdg-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: rdg
{{- end -}}

{{- define "rdg.controllerSelector" -}}
app.kubernetes.io/name: rdg-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end -}}
