{{/* Names, Helm's conventions: <release>-<chart> unless the release already says vipd. */}}
{{- define "vipd.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "vipd.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "vipd.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "vipd.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vipd.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "vipd.labels" -}}
helm.sh/chart: {{ include "vipd.chart" . }}
{{ include "vipd.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: {{ .Values.shape | kebabcase }}
app.kubernetes.io/part-of: vipd
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The election mode: the value, or the shape's. */}}
{{- define "vipd.mode" -}}
{{- if .Values.mode }}{{ .Values.mode }}{{ else if eq .Values.shape "controlPlane" }}vrrp{{ else }}lease{{ end }}
{{- end }}

{{/* "true" when vipd talks to the API server: it then gets a ServiceAccount token and RBAC. */}}
{{- define "vipd.needsAPI" -}}
{{- if or (eq (include "vipd.mode" .) "lease") (eq .Values.shape "ingress") }}true{{ end }}
{{- end }}

{{- define "vipd.serviceAccountName" -}}
{{- default (include "vipd.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{- define "vipd.gossipSecretName" -}}
{{- default (printf "%s-gossip" (include "vipd.fullname" .)) .Values.gossipKey.existingSecret }}
{{- end }}

{{- define "vipd.gossipPort" -}}
{{- $bind := default "0.0.0.0:7946" (index .Values.config "gossip" "bind") }}
{{- splitList ":" $bind | last }}
{{- end }}

{{/* Where the key Secret is mounted; the config's gossip.keyFile names it. */}}
{{- define "vipd.gossipKeyDir" -}}/etc/vipd-gossip{{- end }}
{{/* Where the node's drain directory is mounted. */}}
{{- define "vipd.drainDir" -}}/run/vipd-drain{{- end }}

{{/* The probes' port and host, from config.http.listen. */}}
{{- define "vipd.httpPort" -}}
{{- splitList ":" .Values.config.http.listen | last }}
{{- end }}
{{- define "vipd.httpHost" -}}
{{- $l := .Values.config.http.listen }}
{{- $h := trimSuffix (printf ":%s" (include "vipd.httpPort" .)) $l | trimPrefix "[" | trimSuffix "]" }}
{{- if not (has $h (list "" "0.0.0.0" "::")) }}{{ $h }}{{ end }}
{{- end }}

{{/*
The vipd config (docs/config.md), built from the values as a dict and
written with toYaml. Errors a user can make that the schema cannot see are
failed here with the key that is wrong.
*/}}
{{- define "vipd.config" -}}
{{- $mode := include "vipd.mode" . }}
{{- $v := .Values }}
{{- if and (eq $v.shape "controlPlane") (ne $mode "vrrp") }}
{{- fail (printf "mode: %q: shape controlPlane runs vrrp only (it must hold the VIP without the API server it fronts)" $mode) }}
{{- end }}
{{- if and (ne $v.shape "controlPlane") (eq $mode "vrrp") }}
{{- fail (printf "mode: vrrp is for shape controlPlane; shape %s uses lease or gossip" $v.shape) }}
{{- end }}
{{- if and (not $v.vips) (not $v.groups) }}
{{- fail "vips or groups: one is required, e.g. --set vips={198.51.100.10}" }}
{{- end }}
{{- if and $v.vips $v.groups }}
{{- fail "vips and groups: set one of them, not both" }}
{{- end }}
{{- $cfg := deepCopy $v.config }}
{{- range $m := list "vrrp" "lease" "gossip" }}
{{- if and (ne $m $mode) (index $cfg $m) }}
{{- fail (printf "config.%s is set but the mode is %s" $m $mode) }}
{{- end }}
{{- end }}
{{- $c := dict "apiVersion" "vipd.io/v1alpha1" "kind" "Config" "mode" $mode }}
{{- range $k := list "http" "binding" "announce" "health" }}
{{- with index $cfg $k }}{{ $_ := set $c $k . }}{{ end }}
{{- end }}
{{- $ms := index $cfg $mode | default dict }}
{{- if eq $mode "lease" }}
{{- $_ := set $ms "namespace" (default .Release.Namespace $ms.namespace) }}
{{- end }}
{{- if eq $mode "gossip" }}
{{- if and (not $v.gossipKey.value) (not $v.gossipKey.existingSecret) }}
{{- fail "gossipKey: gossip mode needs a key and the chart has no default: --set gossipKey.value=$(head -c 32 /dev/urandom | base64), or gossipKey.existingSecret=NAME (a Secret with data \"key\")" }}
{{- end }}
{{- if and $v.gossipKey.value $v.gossipKey.existingSecret }}
{{- fail "gossipKey: set value or existingSecret, not both" }}
{{- end }}
{{- $_ := set $ms "keyFile" (printf "%s/key" (include "vipd.gossipKeyDir" .)) }}
{{- if and (not $ms.dns) (not $ms.peers) }}
{{- $_ := set $ms "dns" (printf "%s-gossip.%s.svc.%s" (include "vipd.fullname" .) .Release.Namespace $v.clusterDomain) }}
{{- end }}
{{- end }}
{{- if $ms }}{{ $_ := set $c $mode $ms }}{{ end }}
{{- /* The chart's checks, then the user's. */}}
{{- $checks := list }}
{{- $track := list }}
{{- if and (eq $v.shape "controlPlane") $v.controlPlane.apiserverCheck.enabled }}
{{- $ac := $v.controlPlane.apiserverCheck }}
{{- $checks = append $checks (dict "name" "apiserver" "interval" "1s" "timeout" "1s" "rise" 2 "fall" 2 "http" (dict "url" (printf "https://127.0.0.1:%d/readyz" (int $ac.port)) "caFile" $ac.caFile)) }}
{{- $track = append $track (dict "check" "apiserver") }}
{{- end }}
{{- if eq $v.shape "ingress" }}
{{- $checks = append $checks (dict "name" "ingress-ready" "endpoints" (dict "namespace" $v.ingress.namespace "service" $v.ingress.service)) }}
{{- $track = append $track (dict "check" "ingress-ready") }}
{{- end }}
{{- if $v.drain.enabled }}
{{- $checks = append $checks (dict "name" "drain" "file" (dict "path" (printf "%s/drain" (include "vipd.drainDir" .)))) }}
{{- $track = append $track (dict "check" "drain") }}
{{- end }}
{{- $checks = concat $checks $v.checks }}
{{- if $checks }}{{ $_ := set $c "checks" $checks }}{{ end }}
{{- /* Groups: written by the user, or made from vips. */}}
{{- $groups := $v.groups }}
{{- if $v.vips }}
{{- $groups = list }}
{{- $vips := list }}
{{- range $a := $v.vips }}
{{- $vip := dict "address" $a }}
{{- if $v.interface }}{{ $_ := set $vip "interface" $v.interface }}{{ end }}
{{- $vips = append $vips $vip }}
{{- end }}
{{- if eq $v.shape "multiVIP" }}
{{- range $vip := $vips }}
{{- $name := printf "vip-%s" (regexReplaceAll "[.:/]" (lower $vip.address) "-") | trunc 63 | trimSuffix "-" }}
{{- $g := dict "name" $name "priority" (int $v.priority) "vips" (list $vip) }}
{{- if $track }}{{ $_ := set $g "track" $track }}{{ end }}
{{- $groups = append $groups $g }}
{{- end }}
{{- else }}
{{- $g := dict "name" (ternary "apiserver" "ingress" (eq $v.shape "controlPlane")) "priority" (int $v.priority) "vips" $vips }}
{{- if eq $v.shape "controlPlane" }}
{{- $_ := set $g "vrrp" (dict "vrid" (int $v.controlPlane.vrid) "advertInterval" $v.controlPlane.advertInterval) }}
{{- end }}
{{- if $track }}{{ $_ := set $g "track" $track }}{{ end }}
{{- $groups = append $groups $g }}
{{- end }}
{{- end }}
{{- $_ := set $c "groups" $groups }}
{{- /* apiVersion, kind and mode first, as a person writes them. */ -}}
apiVersion: {{ $c.apiVersion }}
kind: {{ $c.kind }}
mode: {{ $c.mode }}
{{ toYaml (omit $c "apiVersion" "kind" "mode") }}
{{- end }}
