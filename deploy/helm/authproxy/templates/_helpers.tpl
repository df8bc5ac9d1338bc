{{/* Names and labels. */}}
{{- define "authproxy.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "authproxy.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "authproxy.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "authproxy.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "authproxy.selectorLabels" -}}
app.kubernetes.io/name: {{ include "authproxy.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "authproxy.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "authproxy.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "authproxy.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "authproxy.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "authproxy.configMapName" -}}
{{- default (include "authproxy.fullname" .) .Values.existingConfigMap }}
{{- end }}

{{- define "authproxy.claimName" -}}
{{- default (printf "%s-tokens" (include "authproxy.fullname" .)) .Values.store.persistence.existingClaim }}
{{- end }}

{{/*
authproxy.bytes: a Kubernetes memory quantity (256Mi, 1Gi, 500M, 1.5Gi,
268435456) in bytes. Anything else fails, naming the value.
*/}}
{{- define "authproxy.bytes" -}}
{{- $q := toString . }}
{{- if kindIs "float64" . }}
{{- /* a bare number from a values file: bytes, not 2.68435456e+08 */}}
{{- $q = printf "%.0f" . }}
{{- end }}
{{- if not (regexMatch "^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$" $q) }}
{{- fail (printf "resources.limits.memory: %q is not a memory quantity the chart can read to set GOMEMLIMIT; write e.g. 256Mi or 1Gi" $q) }}
{{- end }}
{{- $num := regexReplaceAll "^([0-9.]+).*$" $q "${1}" }}
{{- $unit := regexReplaceAll "^[0-9.]+" $q "" }}
{{- $mult := get (dict "" 1 "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776) $unit }}
{{- printf "%d" (int64 (floor (mulf (float64 $num) $mult))) }}
{{- end }}

{{/*
authproxy.goMemLimit: GOMEMLIMIT in bytes, goMemLimitPercent of the memory
limit; "" when there is no limit (the proxy then picks its own default).
*/}}
{{- define "authproxy.goMemLimit" -}}
{{- $limit := dig "limits" "memory" "" (.Values.resources | default dict) }}
{{- if $limit }}
{{- $pct := int64 .Values.goMemLimitPercent }}
{{- if or (lt $pct 50) (gt $pct 100) }}
{{- fail (printf "goMemLimitPercent: %d is outside 50-100; write e.g. 90 (the rest is room for what the Go runtime does not count)" $pct) }}
{{- end }}
{{- $bytes := int64 (include "authproxy.bytes" $limit) }}
{{- printf "%d" (div (mul $bytes $pct) 100) }}
{{- end }}
{{- end }}

{{/*
authproxy.noLiteralSecrets walks config and fails at a secret key whose
value is written out rather than taken from ${VAR}: the values (and so
Helm's release record) would hold the secret.
*/}}
{{- define "authproxy.noLiteralSecrets" -}}
{{- $secretKeys := list "client_secret" "password" "refresh_token" "api_keys" }}
{{- range $k, $v := .value }}
{{- $path := printf "%s.%s" $.path $k }}
{{- if kindIs "map" $v }}
{{- include "authproxy.noLiteralSecrets" (dict "value" $v "path" $path) }}
{{- else if has $k $secretKeys }}
{{- range $i, $s := (kindIs "slice" $v | ternary $v (list $v)) }}
{{- if and $s (not (regexMatch "^\\$\\{[A-Za-z_][A-Za-z0-9_]*\\}$" (toString $s))) }}
{{- fail (printf "%s: a secret written into the values; put it in a Secret and write ${VAR} with credentials.env, or the key's _file form with credentials.files (see docs/kubernetes.md)" $path) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* authproxy.validate refuses what would not work, saying why. */}}
{{- define "authproxy.validate" -}}
{{- $type := .Values.store.type }}
{{- if not (has $type (list "file" "redis" "memory")) }}
{{- fail (printf "store.type: %q is not file, redis or memory" $type) }}
{{- end }}
{{- if and (gt (int .Values.replicaCount) 1) (ne $type "redis") }}
{{- fail (printf "replicaCount: %d replicas with store.type %s would each keep tokens of their own: each would fetch its own tokens, and a refresh token that rotates would be redeemed by every replica, which locks the account out. Set store.type: redis (with store.redis.urlSecret) to share one token per upstream, or replicaCount: 1" (int .Values.replicaCount) $type) }}
{{- end }}
{{- if and (eq $type "redis") (not .Values.store.redis.urlSecret.name) }}
{{- fail "store.redis.urlSecret.name: store.type redis needs the Secret holding the Redis URL (redis://:PASSWORD@host:6379/0)" }}
{{- end }}
{{- if not .Values.existingConfigMap }}
{{- if not (dig "upstreams" nil (.Values.config | default dict)) }}
{{- fail "config.upstreams: name at least one API the proxy is for (see docs/kubernetes.md), or set existingConfigMap" }}
{{- end }}
{{- range $key := list "listen" "admin" "shutdown_timeout" "store" }}
{{- if hasKey $.Values.config $key }}
{{- fail (printf "config.%s: the chart sets it (ports, shutdownTimeoutSeconds, store), through AUTHPROXY_* variables that would override this; remove it from config" $key) }}
{{- end }}
{{- end }}
{{- include "authproxy.noLiteralSecrets" (dict "value" .Values.config "path" "config") }}
{{- end }}
{{- with .Values.podDisruptionBudget }}
{{- if and .enabled (not (kindIs "invalid" .minAvailable)) (ge (int .minAvailable) (int $.Values.replicaCount)) }}
{{- fail (printf "podDisruptionBudget.minAvailable: %d of %d replicas would block every node drain; use maxUnavailable: 1" (int .minAvailable) (int $.Values.replicaCount)) }}
{{- end }}
{{- end }}
{{- end }}
