{{/* Chart name, overridable by nameOverride. */}}
{{- define "tokensmith.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name prefix of every resource: fullnameOverride, else the release name
when it already contains the chart name, else "<release>-<chart>". Truncated so
that "<fullname>-controller-leader-election" stays a valid name.
*/}}
{{- define "tokensmith.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* "name-version" for the helm.sh/chart label. */}}
{{- define "tokensmith.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every resource. */}}
{{- define "tokensmith.labels" -}}
helm.sh/chart: {{ include "tokensmith.chart" . }}
app.kubernetes.io/name: {{ include "tokensmith.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tokensmith
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of one component; call with (dict "ctx" $ "component" "server"). */}}
{{- define "tokensmith.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tokensmith.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* All labels of one component's resources; same argument as selectorLabels. */}}
{{- define "tokensmith.componentLabels" -}}
{{ include "tokensmith.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The image reference: repository@digest, else repository:tag (tag defaults to appVersion). */}}
{{- define "tokensmith.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "tokensmith.controller.fullname" -}}
{{ include "tokensmith.fullname" . }}-controller
{{- end }}

{{- define "tokensmith.server.fullname" -}}
{{ include "tokensmith.fullname" . }}-server
{{- end }}

{{/* The token API Service is named plainly <fullname>: it is what clients address. */}}
{{- define "tokensmith.server.serviceName" -}}
{{ include "tokensmith.fullname" . }}
{{- end }}

{{- define "tokensmith.controller.serviceAccountName" -}}
{{- if .Values.controller.serviceAccount.create }}
{{- default (include "tokensmith.controller.fullname" .) .Values.controller.serviceAccount.name }}
{{- else }}
{{- required "controller.serviceAccount.name is required when controller.serviceAccount.create is false" .Values.controller.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "tokensmith.server.serviceAccountName" -}}
{{- if .Values.server.serviceAccount.create }}
{{- default (include "tokensmith.server.fullname" .) .Values.server.serviceAccount.name }}
{{- else }}
{{- required "server.serviceAccount.name is required when server.serviceAccount.create is false" .Values.server.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* In-cluster base URL of the token API Service. */}}
{{- define "tokensmith.server.internalURL" -}}
{{- printf "http://%s.%s.svc" (include "tokensmith.server.serviceName" .) .Release.Namespace }}
{{- if ne (int .Values.server.service.port) 80 }}:{{ .Values.server.service.port }}{{ end }}
{{- end }}

{{- define "tokensmith.tokenURL" -}}
{{- default (printf "%s/oauth/token" (include "tokensmith.server.internalURL" .)) .Values.tokenURL }}
{{- end }}

{{- define "tokensmith.issuer" -}}
{{- default (include "tokensmith.server.internalURL" .) .Values.server.issuer }}
{{- end }}

{{/*
topologySpreadConstraints of one component: each constraint without a
labelSelector gets the component's selector labels.
Call with (dict "ctx" $ "component" "server" "constraints" .Values.server.topologySpreadConstraints).
*/}}
{{- define "tokensmith.topologySpread" -}}
{{- $out := list }}
{{- range .constraints }}
{{- $c := deepCopy . }}
{{- if not (hasKey $c "labelSelector") }}
{{- $_ := set $c "labelSelector" (dict "matchLabels" (include "tokensmith.selectorLabels" (dict "ctx" $.ctx "component" $.component) | fromYaml)) }}
{{- end }}
{{- $out = append $out $c }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{/* POD_NAMESPACE from the downward API: both binaries default their namespace to it. */}}
{{/*
The container's memory limit (argument: the container name). The binary sets
GOMEMLIMIT to 90% of it and sizes its argon2id work (19 MiB each) to fit;
without it the runtime knows nothing of the limit and the work admitted grows
with the node's cores.
*/}}
{{- define "tokensmith.memoryLimitEnv" -}}
- name: TOKENSMITH_MEMORY_LIMIT
  valueFrom:
    resourceFieldRef:
      containerName: {{ . }}
      resource: limits.memory
{{- end }}

{{- define "tokensmith.podNamespaceEnv" -}}
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- end }}

{{/*
CEL (admission-policy.yaml): the scopes verdict of e, an entry of
variables.expanded: "" when its policy allows every scope of the object, else
the first scope it refuses.
*/}}
{{- define "tokensmith.cel.scopeVerdict" -}}
!has(e.p.scopes) ? '' : size(variables.scopes.filter(s, !(s in e.names) && !e.prefixes.exists(x, s.startsWith(x)))) == 0 ? '' : 'spec.scopes "' + variables.scopes.filter(s, !(s in e.names) && !e.prefixes.exists(x, s.startsWith(x)))[0] + '"'
{{- end }}
