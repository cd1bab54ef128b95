{{/* Names and labels. */}}
{{- define "incident-bot.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "incident-bot.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "incident-bot.selectorLabels" -}}
app.kubernetes.io/name: {{ include "incident-bot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "incident-bot.labels" -}}
{{ include "incident-bot.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "incident-bot.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "incident-bot.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* PostgreSQL when a database Secret is given; SQLite otherwise. */}}
{{- define "incident-bot.postgres" -}}
{{- if .Values.database.existingSecret }}true{{ end -}}
{{- end -}}

{{- define "incident-bot.replicas" -}}
{{- if not (kindIs "invalid" .Values.replicaCount) -}}
{{- .Values.replicaCount -}}
{{- else if include "incident-bot.postgres" . -}}
2
{{- else -}}
1
{{- end -}}
{{- end -}}

{{/* Refuse values that would deploy something unsafe or broken, naming the value. */}}
{{- define "incident-bot.validate" -}}
{{- if and (not (include "incident-bot.postgres" .)) (gt (int (include "incident-bot.replicas" .)) 1) -}}
{{- fail "replicaCount: SQLite serves one replica; set database.existingSecret (a PostgreSQL URL) to run more" -}}
{{- end -}}
{{- if and .Values.deployment.enabled (not .Values.image.repository) -}}
{{- fail "image.repository: build the image from the Dockerfile, push it to your registry and name it here (docs/deploy.md)" -}}
{{- end -}}
{{- if and .Values.deployment.enabled (not .Values.api.existingSecret) (not .Values.api.allowUnauthenticated) -}}
{{- fail "api.existingSecret: /api/* would be open to the cluster network; give a Secret with the API bearer token, or set api.allowUnauthenticated=true if something in front authenticates" -}}
{{- end -}}
{{- range .Values.rbac.impersonate.groups -}}
{{- if hasPrefix "system:" . -}}
{{- fail (printf "rbac.impersonate.groups: %q is refused (impersonating system:* groups such as system:masters would make the bot cluster-admin)" .) -}}
{{- end -}}
{{- end -}}
{{- range .Values.rbac.impersonate.serviceAccounts -}}
{{- if ne (len (splitList "/" .)) 2 -}}
{{- fail (printf "rbac.impersonate.serviceAccounts: %q is not namespace/name" .) -}}
{{- end -}}
{{- end -}}
{{- range $name, $c := .Values.clusters -}}
{{- if not $c.kubeconfigSecret -}}
{{- fail (printf "clusters.%s.kubeconfigSecret: the Secret holding this cluster's kubeconfig (key kubeconfig) is required" $name) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The settings file: .Values.settings with each guarded cluster's kubeconfig path filled in. */}}
{{- define "incident-bot.settings" -}}
{{- $s := deepCopy (.Values.settings | default dict) -}}
{{- $clusters := deepCopy ((get $s "clusters") | default dict) -}}
{{- $probes := deepCopy ((get $s "probes") | default dict) -}}
{{- $probeClusters := deepCopy ((get $probes "clusters") | default dict) -}}
{{- range $name, $c := .Values.clusters -}}
{{- $path := printf "/etc/incident-bot/clusters/%s/kubeconfig" $name -}}
{{- $_ := set $clusters $name (merge (dict "kubeconfig" $path) (deepCopy ($c.settings | default dict))) -}}
{{- if $c.probe -}}
{{- $_ := set $probeClusters $name (merge (dict "kubeconfig" $path) (deepCopy $c.probe)) -}}
{{- end -}}
{{- end -}}
{{- with .Values.selfCluster.name -}}
{{- $path := "/etc/incident-bot/self/kubeconfig" -}}
{{- $_ := set $clusters . (merge (dict "kubeconfig" $path) (deepCopy ($.Values.selfCluster.settings | default dict))) -}}
{{- if $.Values.selfCluster.probe -}}
{{- $_ := set $probeClusters . (merge (dict "kubeconfig" $path) (deepCopy $.Values.selfCluster.probe)) -}}
{{- end -}}
{{- end -}}
{{- if $clusters -}}{{- $_ := set $s "clusters" $clusters -}}{{- end -}}
{{- if $probeClusters -}}{{- $_ := set $probes "clusters" $probeClusters -}}{{- end -}}
{{- $_ := set $probes "namespace" .Values.rbac.probeNamespace -}}
{{- $_ := set $s "probes" $probes -}}
{{- if .Values.guard.enabled -}}
{{- $guard := dict "enabled" true "mode" .Values.guard.mode "host" "0.0.0.0" "port" .Values.guard.port
      "tls_cert_path" "/etc/incident-bot/guard-tls/tls.crt" "tls_key_path" "/etc/incident-bot/guard-tls/tls.key"
      "breaker" .Values.guard.breaker -}}
{{- if .Values.guard.rules -}}{{- $_ := set $guard "rules" .Values.guard.rules -}}{{- end -}}
{{- $_ := set $s "guard" (merge $guard (deepCopy ((get $s "guard") | default dict))) -}}
{{- end -}}
{{- toYaml $s -}}
{{- end -}}

{{/* Who the roles are bound to: the chart's ServiceAccount, and rbac.extraSubjects. */}}
{{- define "incident-bot.subjects" -}}
- kind: ServiceAccount
  name: {{ include "incident-bot.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
{{- with .Values.rbac.extraSubjects }}
{{ toYaml . }}
{{- end }}
{{- end }}
