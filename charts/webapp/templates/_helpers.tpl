{{/*
Chart name, overridable with .Values.nameOverride. Cut to 63 characters because
Kubernetes names (DNS labels) are limited to that.
*/}}
{{- define "webapp.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified name every resource name derives from: the release name, plus the
chart name unless the release name already contains it. Cut to 52 characters so a
component suffix ("-dashboard") still fits in 63.
*/}}
{{- define "webapp.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Name of the backend Deployment and Service.
*/}}
{{- define "webapp.backend.fullname" -}}
{{- printf "%s-backend" (include "webapp.fullname" .) }}
{{- end }}

{{/*
Name of the dashboard Deployment and Service.
*/}}
{{- define "webapp.dashboard.fullname" -}}
{{- printf "%s-dashboard" (include "webapp.fullname" .) }}
{{- end }}

{{/*
Chart label value: name and version.
*/}}
{{- define "webapp.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every resource.
*/}}
{{- define "webapp.labels" -}}
helm.sh/chart: {{ include "webapp.chart" . }}
{{ include "webapp.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: orderpipeline
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels shared by every component; a component adds
app.kubernetes.io/component to tell its pods apart.
*/}}
{{- define "webapp.selectorLabels" -}}
app.kubernetes.io/name: {{ include "webapp.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
ServiceAccount the pods run as.
*/}}
{{- define "webapp.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "webapp.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Image reference "repository:tag"; an empty tag means the chart's appVersion.
Usage: include "webapp.image" (dict "image" .Values.image "context" $)
*/}}
{{- define "webapp.image" -}}
{{- printf "%s:%s" .image.repository (default .context.Chart.AppVersion .image.tag) }}
{{- end }}

{{/*
Name of the Secret holding the Couchbase credentials: the user's existing Secret,
or the one this chart creates.
*/}}
{{- define "webapp.couchbase.secretName" -}}
{{- default (printf "%s-couchbase" (include "webapp.fullname" .)) .Values.couchbase.existingSecret }}
{{- end }}

{{/*
Refuses a release without Couchbase credentials, so a password is never silently empty.
Kept apart from the Secret's name: `helm lint` turns `fail` into a no-op that returns "",
and a name built from that would surface as a naming warning instead of this message.
*/}}
{{- define "webapp.couchbase.requireCredentials" -}}
{{- if not (or .Values.couchbase.existingSecret .Values.couchbase.password) }}
{{- fail "couchbase credentials missing: set couchbase.existingSecret to a Secret holding the username and password (recommended), or couchbase.password (quick starts only, e.g. --set couchbase.password=...)" }}
{{- end }}
{{- end }}

{{/*
Base URL of the backend Service as seen from the dashboard pods.
*/}}
{{- define "webapp.backend.url" -}}
{{- printf "http://%s:%d" (include "webapp.backend.fullname" .) (int .Values.backend.service.port) }}
{{- end }}

{{/*
Ingress TLS Secret name.
*/}}
{{- define "webapp.ingress.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "webapp.fullname" .)) .Values.ingress.tls.secretName }}
{{- end }}

{{/*
imagePullSecrets block of a pod spec.
*/}}
{{- define "webapp.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
Scheduling constraints shared by every pod.
*/}}
{{- define "webapp.scheduling" -}}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
The container's preStop sleep of `drainSeconds`: the pod stays in service while its endpoint is
removed from the ingress and the Services, and only then gets SIGTERM (the server stops accepting
at once). Argument: the seconds; nothing when 0.
*/}}
{{- define "webapp.drain" -}}
{{- if gt (int .) 0 }}
lifecycle:
  preStop:
    sleep:
      seconds: {{ int . }}
{{- end }}
{{- end }}
