{{/*
Names, labels and the pieces shared by the router and node pod templates.

Naming (F = fullname):
  F                       Service clients use (routers, or the single node)
  F-router                router Deployment (cluster mode)
  F-shard / F-node        StatefulSet of `ruvector serve` pods (cluster / single)
  F-shard-headless        its headless Service; pod DNS names
                          F-shard-<i>.F-shard-headless.<ns>.svc.<clusterDomain>
  F-config                ConfigMap (node.toml, router.toml)
  F-auth                  Secret with the API keys (unless auth.existingSecret)
*/}}

{{- define "ruvector.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Truncated to 40 characters: "-shard-headless" and the pod ordinal
must still fit the 63-character DNS label limit. */}}
{{- define "ruvector.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "ruvector.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The component of the `serve` pods: "shard" in cluster mode, "node" in
single mode. It is also the pods' role label in metrics. */}}
{{- define "ruvector.nodeComponent" -}}
{{- if eq .Values.mode "single" -}}node{{- else -}}shard{{- end -}}
{{- end -}}

{{- define "ruvector.nodeStatefulSetName" -}}
{{- printf "%s-%s" (include "ruvector.fullname" .) (include "ruvector.nodeComponent" .) -}}
{{- end -}}

{{- define "ruvector.nodeHeadlessName" -}}
{{- printf "%s-headless" (include "ruvector.nodeStatefulSetName" .) -}}
{{- end -}}

{{- define "ruvector.routerName" -}}
{{- printf "%s-router" (include "ruvector.fullname" .) -}}
{{- end -}}

{{- define "ruvector.configMapName" -}}
{{- printf "%s-config" (include "ruvector.fullname" .) -}}
{{- end -}}

{{/* Selector labels; call with (dict "root" $ "component" "router"). */}}
{{- define "ruvector.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ruvector.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end -}}

{{/* All standard labels; call like ruvector.selectorLabels. */}}
{{- define "ruvector.labels" -}}
helm.sh/chart: {{ include "ruvector.chart" .root }}
{{ include "ruvector.selectorLabels" . }}
app.kubernetes.io/version: {{ include "ruvector.versionLabel" .root | quote }}
app.kubernetes.io/part-of: ruvector
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end -}}

{{- define "ruvector.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion -}}
{{- end -}}

{{/* The image tag when it is a valid label value (not a digest), else
the chart's appVersion. */}}
{{- define "ruvector.versionLabel" -}}
{{- $tag := include "ruvector.imageTag" . -}}
{{- if regexMatch "^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$" $tag -}}
{{- $tag -}}
{{- else -}}
{{- .Chart.AppVersion -}}
{{- end -}}
{{- end -}}

{{- define "ruvector.image" -}}
{{- printf "%s:%s" .Values.image.repository (include "ruvector.imageTag" .) -}}
{{- end -}}

{{- define "ruvector.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ruvector.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The port every ruvector container listens on (the image's). */}}
{{- define "ruvector.containerPort" -}}8080{{- end -}}

{{/* Shard base URLs in ring order, one per line: the StatefulSet's stable
pod DNS names. Their exact strings key the data placement. */}}
{{- define "ruvector.shardUrls" -}}
{{- $sts := include "ruvector.nodeStatefulSetName" . -}}
{{- $svc := include "ruvector.nodeHeadlessName" . -}}
{{- range $i := until (int .Values.shards.replicas) }}
{{ printf "http://%s-%d.%s.%s.svc.%s:%s" $sts $i $svc $.Release.Namespace $.Values.clusterDomain (include "ruvector.containerPort" $) }}
{{- end -}}
{{- end -}}

{{/* What the placement of data depends on and ruvector cannot move
online: the form of the shard URLs (all but the ordinal), vnodes (per-id
ring of old collections) and the replication factor. The shard count is
not in it: the routers move partitions when it changes. */}}
{{- define "ruvector.placement" -}}
{{- $sts := include "ruvector.nodeStatefulSetName" . -}}
{{- $svc := include "ruvector.nodeHeadlessName" . -}}
{{- printf "http://%s-N.%s.%s.svc.%s:%s\nvnodes=%d\nreplication=%d" $sts $svc .Release.Namespace .Values.clusterDomain (include "ruvector.containerPort" .) (int .Values.router.config.vnodes) (int .Values.router.config.replicationFactor) | sha256sum | trunc 16 -}}
{{- end -}}

{{/* The shards being drained (shards.drain, the highest ordinals), one
URL per line. */}}
{{- define "ruvector.drainUrls" -}}
{{- $urls := include "ruvector.shardUrls" . | trim | splitList "\n" -}}
{{- $n := int .Values.shards.drain -}}
{{- range $i, $url := $urls }}
{{- if ge $i (sub (len $urls) $n) }}
{{ $url }}
{{- end }}
{{- end -}}
{{- end -}}

{{/* API keys. */}}
{{- define "ruvector.authEnabled" -}}
{{- if or .Values.auth.existingSecret .Values.auth.apiKey .Values.auth.readOnlyApiKey -}}true{{- end -}}
{{- end -}}

{{- define "ruvector.secretName" -}}
{{- .Values.auth.existingSecret | default (printf "%s-auth" (include "ruvector.fullname" .)) -}}
{{- end -}}

{{/* Hash of the keys, for the pods' checksum/secret annotation. For an
existingSecret the chart hashes its data when it can read it (install and
upgrade against a cluster; never under `helm template`). */}}
{{- define "ruvector.secretChecksum" -}}
{{- if .Values.auth.existingSecret -}}
{{- $found := lookup "v1" "Secret" .Release.Namespace .Values.auth.existingSecret -}}
{{- printf "existing:%s:%s:%s:%s" .Values.auth.existingSecret .Values.auth.existingSecretApiKeyKey .Values.auth.existingSecretReadOnlyApiKeyKey (toJson (dig "data" dict $found)) | sha256sum -}}
{{- else -}}
{{- include "ruvector.secret" . | sha256sum -}}
{{- end -}}
{{- end -}}

{{/* Env entries for the keys; call with (dict "root" $ "prefix" "RUVECTOR_")
or "RUVECTOR_ROUTER__". */}}
{{- define "ruvector.authEnv" -}}
{{- $v := .root.Values.auth -}}
{{- $secret := include "ruvector.secretName" .root -}}
{{- if $v.existingSecret }}
- name: {{ .prefix }}API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $v.existingSecretApiKeyKey }}
- name: {{ .prefix }}READ_ONLY_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $v.existingSecretReadOnlyApiKeyKey }}
      optional: true
{{- else }}
{{- if $v.apiKey }}
- name: {{ .prefix }}API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: api-key
{{- end }}
{{- if $v.readOnlyApiKey }}
- name: {{ .prefix }}READ_ONLY_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: read-only-api-key
{{- end }}
{{- end }}
{{- end -}}

{{/* The key for clients of the Service (the helm test pod). */}}
{{- define "ruvector.clientKeyEnv" -}}
{{- if include "ruvector.authEnabled" . }}
- name: RUVECTOR_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "ruvector.secretName" . }}
      key: {{ if .Values.auth.existingSecret }}{{ .Values.auth.existingSecretApiKeyKey }}{{ else }}api-key{{ end }}
{{- end }}
{{- end -}}

{{/* The Secret the chart creates (also hashed into checksum/secret). */}}
{{- define "ruvector.secret" -}}
apiVersion: v1
kind: Secret
metadata:
  name: {{ include "ruvector.secretName" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "ruvector.labels" (dict "root" . "component" "auth") | nindent 4 }}
type: Opaque
data:
  {{- with .Values.auth.apiKey }}
  api-key: {{ . | b64enc | quote }}
  {{- end }}
  {{- with .Values.auth.readOnlyApiKey }}
  read-only-api-key: {{ . | b64enc | quote }}
  {{- end }}
{{- end -}}

{{/* [limits] entries (integers), shared by nodes and routers. */}}
{{- define "ruvector.limitsToml" -}}
{{- range $key, $value := .Values.limits }}
{{ $key }} = {{ int64 $value }}
{{- end }}
{{- end -}}

{{/* The node's TOML (`ruvector serve --config`). API keys come from env. */}}
{{- define "ruvector.nodeToml" -}}
{{- $c := .Values.node.config -}}
{{- $s := $c.storage -}}
# ruvector serve: rendered by the ruvector chart. API keys come from the
# environment (RUVECTOR_API_KEY, RUVECTOR_READ_ONLY_API_KEY).
addr = "0.0.0.0:{{ include "ruvector.containerPort" . }}"
data_dir = "/data"
shutdown_timeout_secs = {{ int64 $c.shutdownTimeoutSeconds }}

[storage]
{{- if eq $s.fsync "interval" }}
fsync = { interval_ms = {{ int64 $s.fsyncIntervalMs }} }
{{- else }}
fsync = {{ $s.fsync | quote }}
{{- end }}
checkpoint_wal_bytes = {{ int64 $s.checkpointWalBytes }}
checkpoint_interval_secs = {{ int64 $s.checkpointIntervalSecs }}
compact_min_bytes = {{ int64 $s.compactMinBytes }}
{{- if $s.insertThreads }}
insert_threads = {{ int64 $s.insertThreads }}
{{- end }}

[limits]
{{- include "ruvector.limitsToml" . }}
{{- end -}}

{{/* The router's TOML (`ruvector router --config`, its [router] table;
unknown keys are rejected there). */}}
{{- define "ruvector.routerToml" -}}
{{- $c := .Values.router.config -}}
# ruvector router: rendered by the ruvector chart. API keys come from the
# environment (RUVECTOR_ROUTER__API_KEY, RUVECTOR_ROUTER__READ_ONLY_API_KEY).
[router]
addr = "0.0.0.0:{{ include "ruvector.containerPort" . }}"
# One URL per shard pod, derived from shards.replicas. Placement hashes onto
# these exact strings: see the chart's README before changing them.
shards = [
{{- range $url := include "ruvector.shardUrls" . | trim | splitList "\n" }}
  {{ $url | quote }},
{{- end }}
]
connect_timeout_ms = {{ int64 $c.connectTimeoutMs }}
request_timeout_ms = {{ int64 $c.requestTimeoutMs }}
vnodes = {{ int64 $c.vnodes }}
collection_cache_ms = {{ int64 $c.collectionCacheMs }}
health_interval_ms = {{ int64 $c.healthIntervalMs }}
# Copies of every partition (distinct shards); fixed for the data, like the
# shard list. write_quorum: copies a write needs (absent: 1).
replication_factor = {{ int64 $c.replicationFactor }}
{{- if not (kindIs "invalid" $c.writeQuorum) }}
write_quorum = {{ int64 $c.writeQuorum }}
{{- end }}
repair_interval_ms = {{ int64 $c.repairIntervalMs }}
{{- if gt (int .Values.shards.drain) 0 }}
# Shards being emptied before they are removed (shards.drain).
drain = [
{{- range $url := include "ruvector.drainUrls" . | trim | splitList "\n" }}
  {{ $url | quote }},
{{- end }}
]
{{- end }}
tombstone_grace_ms = {{ int64 $c.tombstoneGraceMs }}
tombstone_horizon_ms = {{ int64 $c.tombstoneHorizonMs }}

[router.limits]
{{- include "ruvector.limitsToml" . }}
{{- end -}}

{{/* terminationGracePeriodSeconds of the node pods: preStop sleep, then
the drain (shutdown_timeout_secs), then the final checkpoint. */}}
{{- define "ruvector.nodeTerminationGrace" -}}
{{- $n := .Values.node -}}
{{- $floor := add (int64 $n.preStopSleepSeconds) (int64 $n.config.shutdownTimeoutSeconds) -}}
{{- if kindIs "invalid" $n.terminationGracePeriodSeconds -}}
{{- add $floor (int64 $n.config.checkpointGraceSeconds) -}}
{{- else if le (int64 $n.terminationGracePeriodSeconds) $floor -}}
{{- fail (printf "node.terminationGracePeriodSeconds (%d) must exceed node.preStopSleepSeconds + node.config.shutdownTimeoutSeconds (%d), or the kubelet kills the node before it drains and checkpoints" (int64 $n.terminationGracePeriodSeconds) $floor) -}}
{{- else -}}
{{- int64 $n.terminationGracePeriodSeconds -}}
{{- end -}}
{{- end -}}

{{/* Pod fields common to routers and nodes; call with
(dict "root" $ "cfg" .Values.router "component" "router"). Emits
top-level pod spec keys. */}}
{{- define "ruvector.podCommon" -}}
{{- $root := .root -}}
{{- $cfg := .cfg -}}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
serviceAccountName: {{ include "ruvector.serviceAccountName" $root }}
automountServiceAccountToken: {{ $root.Values.serviceAccount.automountServiceAccountToken }}
# Service links would add RUVECTOR_*-prefixed variables (for a Service
# named "ruvector") that the configuration loader reads as settings.
enableServiceLinks: false
{{- with ($cfg.priorityClassName | default $root.Values.priorityClassName) }}
priorityClassName: {{ . }}
{{- end }}
securityContext:
  {{- toYaml $root.Values.podSecurityContext | nindent 2 }}
{{- with (merge (deepCopy $cfg.nodeSelector) $root.Values.nodeSelector) }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (concat $root.Values.tolerations $cfg.tolerations) }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if $cfg.affinity }}
affinity:
  {{- toYaml $cfg.affinity | nindent 2 }}
{{- else if eq $cfg.podAntiAffinity "soft" }}
affinity:
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "ruvector.selectorLabels" (dict "root" $root "component" .component) | nindent 14 }}
{{- else if eq $cfg.podAntiAffinity "hard" }}
affinity:
  podAntiAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      - topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "ruvector.selectorLabels" (dict "root" $root "component" .component) | nindent 12 }}
{{- end }}
topologySpreadConstraints:
{{- if $cfg.topologySpreadConstraints }}
  {{- toYaml $cfg.topologySpreadConstraints | nindent 2 }}
{{- else }}
  - maxSkew: 1
    topologyKey: topology.kubernetes.io/zone
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "ruvector.selectorLabels" (dict "root" $root "component" .component) | nindent 8 }}
{{- end }}
{{- end -}}

{{/* Pod metadata labels and annotations; call like podCommon, plus
"checksums" (a dict of annotation name → value). */}}
{{- define "ruvector.podMetadata" -}}
labels:
  {{- include "ruvector.labels" (dict "root" .root "component" .component) | nindent 2 }}
  {{- with (merge (deepCopy .cfg.podLabels) .root.Values.podLabels) }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
annotations:
  {{- range $k, $v := .checksums }}
  {{ $k }}: {{ $v | quote }}
  {{- end }}
  {{- with (merge (deepCopy .cfg.podAnnotations) .root.Values.podAnnotations) }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end -}}

{{/* Probes; call with (dict "cfg" .Values.node "startupPath" "/started"). */}}
{{- define "ruvector.probes" -}}
startupProbe:
  httpGet:
    path: {{ .startupPath }}
    port: http
  periodSeconds: {{ .cfg.startupProbe.periodSeconds }}
  failureThreshold: {{ .cfg.startupProbe.failureThreshold }}
  timeoutSeconds: {{ .cfg.startupProbe.timeoutSeconds }}
readinessProbe:
  httpGet:
    path: /ready
    port: http
  periodSeconds: {{ .cfg.readinessProbe.periodSeconds }}
  failureThreshold: {{ .cfg.readinessProbe.failureThreshold }}
  successThreshold: {{ .cfg.readinessProbe.successThreshold }}
  timeoutSeconds: {{ .cfg.readinessProbe.timeoutSeconds }}
livenessProbe:
  httpGet:
    path: /health
    port: http
  periodSeconds: {{ .cfg.livenessProbe.periodSeconds }}
  failureThreshold: {{ .cfg.livenessProbe.failureThreshold }}
  timeoutSeconds: {{ .cfg.livenessProbe.timeoutSeconds }}
{{- end -}}

{{/* Refuses value combinations that would lose or hide data. */}}
{{- define "ruvector.validate" -}}
{{- if and .Values.auth.readOnlyApiKey (not .Values.auth.apiKey) (not .Values.auth.existingSecret) -}}
{{- fail "auth.readOnlyApiKey needs auth.apiKey too: with only a read-only key nothing could ever be written" -}}
{{- end -}}
{{- $rc := .Values.router.config -}}
{{- if and (eq .Values.mode "cluster") (gt (int $rc.replicationFactor) (int .Values.shards.replicas)) -}}
{{- fail (printf "router.config.replicationFactor %d exceeds shards.replicas %d: copies live on distinct shards" (int $rc.replicationFactor) (int .Values.shards.replicas)) -}}
{{- end -}}
{{- if and (eq .Values.mode "cluster") (gt (add (int .Values.shards.drain) (int $rc.replicationFactor)) (int .Values.shards.replicas)) -}}
{{- fail (printf "shards.drain %d leaves fewer than router.config.replicationFactor %d of shards.replicas %d to hold the copies" (int .Values.shards.drain) (int $rc.replicationFactor) (int .Values.shards.replicas)) -}}
{{- end -}}
{{- if and (not (kindIs "invalid" $rc.writeQuorum)) (gt (int $rc.writeQuorum) (int $rc.replicationFactor)) -}}
{{- fail "router.config.writeQuorum must not exceed router.config.replicationFactor" -}}
{{- end -}}
{{- if and .Values.router.autoscaling.enabled (lt (int .Values.router.autoscaling.maxReplicas) (int .Values.router.autoscaling.minReplicas)) -}}
{{- fail "router.autoscaling.maxReplicas must be at least minReplicas" -}}
{{- end -}}
{{- range $role := list "node" "router" -}}
{{- $pdb := (index $.Values $role).pdb -}}
{{- if and $pdb.enabled (not (kindIs "invalid" $pdb.maxUnavailable)) (not (kindIs "invalid" $pdb.minAvailable)) -}}
{{- fail (printf "%s.pdb: set maxUnavailable or minAvailable, not both" $role) -}}
{{- end -}}
{{- end -}}
{{- $fullname := include "ruvector.fullname" . -}}
{{- if not .Values.shards.acknowledgeResharding -}}
{{- /* lookup answers only against a cluster (install/upgrade); under
`helm template` it returns nothing and these checks pass. */ -}}
{{- $shards := lookup "apps/v1" "StatefulSet" .Release.Namespace (printf "%s-shard" $fullname) -}}
{{- $single := lookup "apps/v1" "StatefulSet" .Release.Namespace (printf "%s-node" $fullname) -}}
{{- if and (eq .Values.mode "single") $shards -}}
{{- fail (printf "mode=single, but this release runs the shard StatefulSet %s-shard: switching modes does not move data (see the chart README). Set shards.acknowledgeResharding=true to do it anyway." $fullname) -}}
{{- end -}}
{{- if and (eq .Values.mode "cluster") $single -}}
{{- fail (printf "mode=cluster, but this release runs the single node StatefulSet %s-node: switching modes does not move data (see the chart README). Set shards.acknowledgeResharding=true to do it anyway." $fullname) -}}
{{- end -}}
{{- if and (eq .Values.mode "cluster") $shards -}}
{{- $before := dig "metadata" "annotations" "ruvector.io/placement" "" $shards -}}
{{- if and $before (ne $before (include "ruvector.placement" .)) -}}
{{- fail "this upgrade changes what ruvector cannot move online (the release name, namespace, clusterDomain, router.config.vnodes or router.config.replicationFactor): vectors already written would become unreachable. Keep them, or set shards.acknowledgeResharding=true if the cluster is empty or will be re-imported (see the chart README)." -}}
{{- end -}}
{{- $was := int (dig "metadata" "annotations" "ruvector.io/shards" "0" $shards) -}}
{{- $drained := int (dig "metadata" "annotations" "ruvector.io/draining" "0" $shards) -}}
{{- if and (gt $was 0) (lt (int .Values.shards.replicas) $was) (lt $drained (sub $was (int .Values.shards.replicas))) -}}
{{- fail (printf "shards.replicas %d -> %d removes shards that were not drained (draining: %d): their data would be lost. First upgrade with shards.drain=%d and the same shards.replicas, wait until `ruvector cluster --url <router> --wait` says they may be removed, then lower shards.replicas (see the chart README)." $was (int .Values.shards.replicas) $drained (sub $was (int .Values.shards.replicas))) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
