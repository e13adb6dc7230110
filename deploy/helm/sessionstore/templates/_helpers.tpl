{{/* The release's name for its objects: the release name, with the chart's name unless it has it. */}}
{{- define "sessionstore.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The labels that select the release's pods: never change them (selectors are immutable). */}}
{{- define "sessionstore.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "sessionstore.labels" -}}
{{ include "sessionstore.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "sessionstore.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "sessionstore.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "sessionstore.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end -}}
{{- end -}}

{{- define "sessionstore.replicas" -}}
{{- if eq .Values.storage "jsonl" }}{{ .Values.jsonl.replicas }}{{ else }}{{ .Values.postgres.replicas }}{{ end -}}
{{- end -}}

{{/* Where the pod mounts its files; the server's flags name the files inside. */}}
{{- define "sessionstore.paths" -}}
data: /data
tls: /etc/sessionstore/tls
clientCa: /etc/sessionstore/client-ca
jwks: /etc/sessionstore/jwks
{{- end -}}

{{/*
Values that the server would refuse, or that would lose data, fail the render with what to do,
as the server's own checks would fail its start (src/config.ts).
*/}}
{{- define "sessionstore.validate" -}}
{{- $auth := .Values.auth -}}
{{- if and (eq $auth.mode "none") (not $auth.allowUnauthenticated) -}}
{{- fail "auth.mode is none, and the server in a pod listens on 0.0.0.0: anyone who reaches it could read and delete every session, so it refuses to start (protected mode). Set auth.mode to jwt or mtls, or set auth.allowUnauthenticated=true when something in front authenticates every caller (a mesh sidecar doing mTLS)" -}}
{{- end -}}
{{- if eq $auth.mode "jwt" -}}
{{- if eq (empty $auth.jwt.jwks.configMap) (empty $auth.jwt.jwks.secret) -}}
{{- fail "auth.mode jwt needs the JWKS from one ConfigMap or Secret: set auth.jwt.jwks.configMap or auth.jwt.jwks.secret (not both)" -}}
{{- end -}}
{{- if or (empty $auth.jwt.issuer) (empty $auth.jwt.audience) -}}
{{- fail "auth.mode jwt needs auth.jwt.issuer and auth.jwt.audience: without them a token its issuer made for another service would be accepted" -}}
{{- end -}}
{{- end -}}
{{- if and .Values.tls.clientCa.secretName (not .Values.tls.secretName) -}}
{{- fail "tls.clientCa (mTLS) needs tls.secretName: the server's own certificate" -}}
{{- end -}}
{{- if and (eq $auth.mode "mtls") (not .Values.tls.clientCa.secretName) -}}
{{- fail "auth.mode mtls needs tls.secretName and tls.clientCa.secretName: callers are known by their client certificates" -}}
{{- end -}}
{{- if and (eq .Values.storage "postgres") (not .Values.postgres.databaseUrlSecret.name) -}}
{{- fail "storage postgres needs postgres.databaseUrlSecret.name: a Secret holding the database URL (kubectl create secret generic NAME --from-literal=url=postgresql://...)" -}}
{{- end -}}
{{- if and (eq .Values.storage "jsonl") (gt (int .Values.jsonl.replicas) 1) (not .Values.istio.destinationRule.enabled) (not .Values.jsonl.externalSessionAffinity) -}}
{{- fail (printf "jsonl.replicas is %v: each session lives on one pod's volume, so every call about it must reach that pod, which a Service alone cannot do. Enable istio.destinationRule (a hash on x-session-id), set jsonl.externalSessionAffinity=true if your balancer routes by x-session-id, or use storage postgres" .Values.jsonl.replicas) -}}
{{- end -}}
{{- $managed := list "listen" "storage" "data-dir" "database-url" "tls-cert" "tls-key" "tls-client-ca" "auth" "auth-jwks" "auth-issuer" "auth-audience" "auth-tenant-claim" "allow-unauthenticated" "drain-delay-ms" "shutdown-timeout-ms" "metrics-listen" "metrics-per-tenant" -}}
{{- range $name, $value := .Values.settings -}}
{{- if has $name $managed -}}
{{- fail (printf "settings.%s is set by the chart from its own values: see values.yaml" $name) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The server's arguments, after the image's ENTRYPOINT (node dist/src/cli.js): every setting as a
flag, which the server checks at start (an unknown one fails it, where an unknown environment
variable would be ignored).
*/}}
{{- define "sessionstore.args" -}}
{{- $paths := include "sessionstore.paths" . | fromYaml -}}
{{- $args := list "serve" (printf "--listen=0.0.0.0:%d" (int .Values.service.port)) (printf "--storage=%s" .Values.storage) -}}
{{- if eq .Values.storage "jsonl" -}}
{{- $args = append $args (printf "--data-dir=%s" $paths.data) -}}
{{- end -}}
{{- if .Values.tls.secretName -}}
{{- $args = concat $args (list (printf "--tls-cert=%s/tls.crt" $paths.tls) (printf "--tls-key=%s/tls.key" $paths.tls)) -}}
{{- end -}}
{{- if .Values.tls.clientCa.secretName -}}
{{- $args = append $args (printf "--tls-client-ca=%s/ca.crt" $paths.clientCa) -}}
{{- end -}}
{{- $args = append $args (printf "--auth=%s" .Values.auth.mode) -}}
{{- if eq .Values.auth.mode "none" -}}
{{- $args = append $args "--allow-unauthenticated" -}}
{{- else if eq .Values.auth.mode "jwt" -}}
{{- with .Values.auth.jwt -}}
{{- $args = concat $args (list (printf "--auth-jwks=%s/jwks.json" $paths.jwks) (printf "--auth-issuer=%s" .issuer) (printf "--auth-audience=%s" .audience) (printf "--auth-tenant-claim=%s" .tenantClaim)) -}}
{{- end -}}
{{- end -}}
{{- $args = concat $args (list (printf "--drain-delay-ms=%d" (int .Values.shutdown.drainDelayMs)) (printf "--shutdown-timeout-ms=%d" (int .Values.shutdown.timeoutMs))) -}}
{{- if .Values.metrics.enabled -}}
{{- $args = append $args (printf "--metrics-listen=0.0.0.0:%d" (int .Values.metrics.port)) -}}
{{- if .Values.metrics.perTenant -}}
{{- $args = append $args "--metrics-per-tenant" -}}
{{- end -}}
{{- end -}}
{{- range $name, $value := .Values.settings -}}
{{- /* Whole numbers come from YAML as floats: 1800000 must not become 1.8e+06. */ -}}
{{- $args = append $args (printf "--%s=%v" $name (ternary (int64 $value) $value (kindIs "float64" $value))) -}}
{{- end -}}
{{- toYaml $args -}}
{{- end -}}
