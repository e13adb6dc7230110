{{/* The pod template, the same for the StatefulSet (jsonl) and the Deployment (postgres). */}}
{{- define "sessionstore.podTemplate" -}}
{{- $paths := include "sessionstore.paths" . | fromYaml -}}
{{- $tls := .Values.tls -}}
{{- $jwks := .Values.auth.jwt.jwks -}}
{{- $jwt := eq .Values.auth.mode "jwt" -}}
{{- $jsonl := eq .Values.storage "jsonl" -}}
metadata:
  labels:
    {{- include "sessionstore.labels" . | nindent 4 }}
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with .Values.podAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  serviceAccountName: {{ include "sessionstore.serviceAccountName" . }}
  # The server never calls the Kubernetes API.
  automountServiceAccountToken: false
  # Kubernetes would set SESSIONSTORE_PORT, SESSIONSTORE_SERVICE_HOST... for a Service named
  # sessionstore: the server's own prefix. None is a setting today; none should ever be read.
  enableServiceLinks: false
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  # Drain, the shutdown timeout, then the last writes and fsyncs; SIGKILL would lose them.
  terminationGracePeriodSeconds: {{ add (div (add .Values.shutdown.drainDelayMs .Values.shutdown.timeoutMs 999) 1000) .Values.shutdown.finalWritesSeconds }}
  securityContext:
    runAsNonRoot: true
    runAsUser: {{ .Values.securityContext.runAsUser }}
    runAsGroup: {{ .Values.securityContext.runAsGroup }}
    # Makes the data volume writable by the user; OnRootMismatch: no walk of a large volume at
    # every start.
    fsGroup: {{ .Values.securityContext.fsGroup }}
    fsGroupChangePolicy: OnRootMismatch
    seccompProfile:
      type: RuntimeDefault
  containers:
    - name: sessionstore
      image: {{ include "sessionstore.image" . }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args:
        {{- include "sessionstore.args" . | nindent 8 }}
      {{- if or (not $jsonl) .Values.env }}
      env:
        {{- if not $jsonl }}
        - name: SESSIONSTORE_DATABASE_URL
          valueFrom:
            secretKeyRef:
              name: {{ .Values.postgres.databaseUrlSecret.name }}
              key: {{ .Values.postgres.databaseUrlSecret.key }}
        {{- end }}
        {{- with .Values.env }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- end }}
      ports:
        - name: grpc
          containerPort: {{ .Values.service.port }}
          protocol: TCP
        {{- if .Values.metrics.enabled }}
        - name: metrics
          containerPort: {{ .Values.metrics.port }}
          protocol: TCP
        {{- end }}
      {{- /* Kubernetes' gRPC probe speaks plaintext only (and takes a port number, not a name). */}}
      {{- $check := ternary (dict "tcpSocket" (dict "port" "grpc")) (dict "grpc" (dict "port" (int .Values.service.port))) (not (empty $tls.secretName)) }}
      startupProbe:
        {{- toYaml (merge (deepCopy .Values.probes.startup) $check) | nindent 8 }}
      readinessProbe:
        {{- toYaml (merge (deepCopy .Values.probes.readiness) $check) | nindent 8 }}
      livenessProbe:
        tcpSocket:
          port: grpc
        {{- toYaml .Values.probes.liveness | nindent 8 }}
      resources:
        {{- toYaml .Values.resources | nindent 8 }}
      securityContext:
        readOnlyRootFilesystem: true
        allowPrivilegeEscalation: false
        privileged: false
        capabilities:
          drop: [ALL]
      {{- /* Whole volumes, never subPath: the kubelet updates them in place (a rotated
        certificate), which a subPath mount never sees. */}}
      {{- if or $jsonl $tls.secretName $tls.clientCa.secretName $jwt }}
      volumeMounts:
        {{- if $jsonl }}
        - name: data
          mountPath: {{ $paths.data }}
        {{- end }}
        {{- if $tls.secretName }}
        - name: tls
          mountPath: {{ $paths.tls }}
          readOnly: true
        {{- end }}
        {{- if $tls.clientCa.secretName }}
        - name: client-ca
          mountPath: {{ $paths.clientCa }}
          readOnly: true
        {{- end }}
        {{- if $jwt }}
        - name: jwks
          mountPath: {{ $paths.jwks }}
          readOnly: true
        {{- end }}
      {{- end }}
  {{- if or $tls.secretName $tls.clientCa.secretName $jwt }}
  volumes:
    {{- if $tls.secretName }}
    - name: tls
      secret:
        secretName: {{ $tls.secretName }}
        defaultMode: 288 # 0440: the user reads it through fsGroup
        items:
          - { key: tls.crt, path: tls.crt }
          - { key: tls.key, path: tls.key }
    {{- end }}
    {{- if $tls.clientCa.secretName }}
    - name: client-ca
      secret:
        secretName: {{ $tls.clientCa.secretName }}
        defaultMode: 288 # 0440
        items:
          - { key: {{ $tls.clientCa.key | quote }}, path: ca.crt }
    {{- end }}
    {{- if $jwt }}
    - name: jwks
      {{- if $jwks.configMap }}
      configMap:
        name: {{ $jwks.configMap }}
      {{- else }}
      secret:
        secretName: {{ $jwks.secret }}
        defaultMode: 288 # 0440
      {{- end }}
        items:
          - { key: {{ $jwks.key | quote }}, path: jwks.json }
    {{- end }}
  {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
