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
The entries of .Values.secrets that secrets.existingSecret (the Secret named once for
all of them) supplies: the master key and the management token always, the database
URL, the Redis URL and the internal token in cluster mode.
*/}}
{{- define "facio.sharedSecretEntries" -}}
{{- $names := list "masterKey" "managementToken" -}}
{{- if .Values.cluster.enabled -}}
{{- $names = concat $names (list "databaseUrl" "redisUrl" "internalToken") -}}
{{- end -}}
{{- join "," $names -}}
{{- end -}}

{{/*
Where one entry of .Values.secrets comes from, as JSON {name, key, optional}, or
nothing: its own existingSecret when named, else the chart's Secret when it has a
value, else secrets.existingSecret when that supplies the entry (there the
management token may be missing, and the master key too outside cluster mode).
Arguments: (list $ "entryName")
*/}}
{{- define "facio.secretSource" -}}
{{- $root := index . 0 -}}
{{- $name := index . 1 -}}
{{- $s := index $root.Values.secrets $name -}}
{{- $shared := $root.Values.secrets.existingSecret | default "" -}}
{{- if $s.existingSecret -}}
{{- dict "name" $s.existingSecret "key" $s.key "optional" false | toJson -}}
{{- else if $s.value -}}
{{- dict "name" (include "facio.secretName" $root) "key" $s.key "optional" false | toJson -}}
{{- else if and $shared (has $name (splitList "," (include "facio.sharedSecretEntries" $root))) -}}
{{- $optional := or (eq $name "managementToken") (and (eq $name "masterKey") (not $root.Values.cluster.enabled)) -}}
{{- dict "name" $shared "key" $s.key "optional" $optional | toJson -}}
{{- end -}}
{{- end -}}

{{/*
An environment variable from one entry of .Values.secrets (see facio.secretSource),
or nothing when the entry is not given.
Arguments: (list $ "NAME" "entryName")
*/}}
{{- define "facio.secretEnv" -}}
{{- $root := index . 0 -}}
{{- $var := index . 1 -}}
{{- $source := include "facio.secretSource" (list $root (index . 2)) -}}
{{- if $source -}}
{{- $ref := fromJson $source -}}
- name: {{ $var }}
  valueFrom:
    secretKeyRef:
      name: {{ $ref.name }}
      key: {{ $ref.key }}
      {{- if $ref.optional }}
      optional: true
      {{- end }}
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
{{- fail "more than one replica cannot share one volume: with persistence.enabled every pod would want the same data directory, which one node holds at a time. Run several replicas in cluster mode (cluster.enabled=true, persistence.enabled=false, a PostgreSQL store and Redis in secrets), or one node on its volume (replicaCount=1, autoscaling off; see values-sqlite.yaml)" -}}
{{- end -}}
{{- if and .Values.persistence.enabled (ne .Values.strategy.type "Recreate") -}}
{{- fail "persistence.enabled needs strategy.type=Recreate: the new pod cannot open the data directory (or mount a ReadWriteOnce volume) while the old one holds it" -}}
{{- end -}}
{{- if .Values.cluster.enabled -}}
{{- $missing := list -}}
{{- range list "databaseUrl" "redisUrl" "internalToken" "masterKey" -}}
{{- if not (include "facio.secretSource" (list $ .)) -}}
{{- $missing = append $missing (printf "secrets.%s" .) -}}
{{- end -}}
{{- end -}}
{{- if $missing -}}
{{- fail (printf "cluster mode (cluster.enabled=true) needs %s: name the Secret holding database-url, redis-url, internal-token and master-key with secrets.existingSecret, or give each its own existingSecret or value (or set cluster.enabled=false for one node on SQLite, see values-sqlite.yaml)" (join ", " $missing)) -}}
{{- end -}}
{{- $url := .Values.secrets.databaseUrl.value | default "" -}}
{{- if and $url (not .Values.secrets.databaseUrl.existingSecret) (not (or (hasPrefix "postgres://" $url) (hasPrefix "postgresql://" $url))) -}}
{{- fail "cluster mode needs a PostgreSQL store that every node shares: secrets.databaseUrl must be a postgres:// or postgresql:// URL" -}}
{{- end -}}
{{- else -}}
{{- if $many -}}
{{- fail "more than one replica needs cluster mode (cluster.enabled=true) on a shared PostgreSQL store and Redis: keep replicaCount 1 and autoscaling off with cluster.enabled=false" -}}
{{- end -}}
{{- range list "redisUrl" "internalToken" -}}
{{- $s := index $.Values.secrets . -}}
{{- if or $s.existingSecret $s.value -}}
{{- fail (printf "secrets.%s is for cluster mode, which cluster.enabled=false turns off: set cluster.enabled=true or leave secrets.%s unset" . .) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
