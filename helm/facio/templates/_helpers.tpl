{{/* The chart's name, cut to fit a label. */}}
{{- define "facio.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name: object names start with it. */}}
{{- define "facio.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "facio.selectorLabels" -}}
app.kubernetes.io/name: {{ include "facio.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "facio.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "facio.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: facio
{{- end -}}

{{- define "facio.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "facio.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Secret the chart creates for secrets given as values. */}}
{{- define "facio.secretName" -}}
{{- include "facio.fullname" . -}}
{{- end -}}

{{/* Whether any secret is given as a value and not by name (then the chart creates its Secret). */}}
{{- define "facio.hasSecretValues" -}}
{{- $any := false -}}
{{- range $name, $s := .Values.secrets -}}
{{- if and (kindIs "map" $s) $s.value (not $s.existingSecret) -}}{{- $any = true -}}{{- end -}}
{{- end -}}
{{- if $any -}}true{{- end -}}
{{- end -}}

{{/*
An environment variable from one entry of .Values.secrets: its existingSecret when
named, else the chart's Secret when it has a value, else nothing.
Arguments: (list $ "NAME" $entry)
*/}}
{{- define "facio.secretEnv" -}}
{{- $root := index . 0 -}}
{{- $var := index . 1 -}}
{{- $s := index . 2 -}}
{{- if or $s.existingSecret $s.value -}}
- name: {{ $var }}
  valueFrom:
    secretKeyRef:
      name: {{ $s.existingSecret | default (include "facio.secretName" $root) }}
      key: {{ $s.key }}
{{- end -}}
{{- end -}}

{{/* Seconds the pod needs to stop: the preStop wait plus Facio's drain. */}}
{{- define "facio.drainSeconds" -}}
{{- $grace := 30 -}}
{{- if and .Values.config.api (hasKey .Values.config.api "shutdownGraceS") -}}
{{- $grace = int .Values.config.api.shutdownGraceS -}}
{{- end -}}
{{- add (int .Values.lifecycle.preStopSleepS) $grace -}}
{{- end -}}

{{- define "facio.terminationGracePeriodSeconds" -}}
{{- $drain := int (include "facio.drainSeconds" .) -}}
{{- if kindIs "invalid" .Values.lifecycle.terminationGracePeriodSeconds -}}
{{- add $drain 15 -}}
{{- else -}}
{{- $given := int .Values.lifecycle.terminationGracePeriodSeconds -}}
{{- if le $given $drain -}}
{{- fail (printf "lifecycle.terminationGracePeriodSeconds (%d) must be larger than lifecycle.preStopSleepS + config.api.shutdownGraceS (%d), or the node is killed while it drains" $given $drain) -}}
{{- end -}}
{{- $given -}}
{{- end -}}
{{- end -}}

{{/* config.json: the operator's config with the keys the chart owns. */}}
{{- define "facio.config" -}}
{{- $config := deepCopy (.Values.config | default dict) -}}
{{- $api := merge (dict "host" "0.0.0.0" "port" (int .Values.containerPort)) ($config.api | default dict) -}}
{{- $_ := set $api "host" "0.0.0.0" -}}
{{- $_ := set $api "port" (int .Values.containerPort) -}}
{{- $_ := set $config "api" $api -}}
{{- if or .Values.secrets.jwtPublicKeys.existingSecret .Values.secrets.jwtPublicKeys.value -}}
{{- $auth := $config.auth | default dict -}}
{{- $_ := set $auth "publicKeysFile" (printf "/etc/facio/jwt/%s" .Values.secrets.jwtPublicKeys.key) -}}
{{- $_ := set $config "auth" $auth -}}
{{- end -}}
{{- toPrettyJson $config -}}
{{- end -}}

{{/* Refuses combinations that cannot work. */}}
{{- define "facio.checks" -}}
{{- $many := or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled -}}
{{- if and .Values.persistence.enabled $many -}}
{{- fail "more than one replica needs a shared store and cluster mode: with persistence.enabled every pod would want the same data directory, which one node holds at a time. Keep replicaCount 1 (and autoscaling off), or set persistence.enabled=false with secrets.databaseUrl (PostgreSQL), secrets.redisUrl and secrets.internalToken (cluster mode)" -}}
{{- end -}}
{{- $cluster := or .Values.secrets.redisUrl.existingSecret .Values.secrets.redisUrl.value -}}
{{- $shared := or .Values.secrets.databaseUrl.existingSecret .Values.secrets.databaseUrl.value -}}
{{- if and $many (not (and $cluster $shared)) -}}
{{- fail "more than one replica needs cluster mode on a shared PostgreSQL store: set secrets.databaseUrl, secrets.redisUrl and secrets.internalToken" -}}
{{- end -}}
{{- if and $cluster (not (or .Values.secrets.internalToken.existingSecret .Values.secrets.internalToken.value)) -}}
{{- fail "cluster mode (secrets.redisUrl) needs secrets.internalToken: the nodes present it to one another" -}}
{{- end -}}
{{- end -}}
