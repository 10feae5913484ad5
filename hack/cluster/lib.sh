# shellcheck shell=bash disable=SC2034 # the path variables are for the sourcing scripts
# Shared helpers for hack/cluster/*.sh: paths of the local cluster's state
# under .cluster/, its network layout, logging, free-port selection,
# process-group handling, privilege checks and bounded readiness polling.
# Sourced, never executed.

cluster_here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$cluster_here/../.." && pwd)"
state_dir="$repo_root/.cluster"
bin_dir="$state_dir/bin"
pki_dir="$state_dir/pki"
run_dir="$state_dir/run"
log_dir="$state_dir/logs"
etcd_data_dir="$state_dir/etcd"
kubeconfig="$state_dir/kubeconfig"
# Cargo's target directory (CARGO_TARGET_DIR, resolved against the caller's
# working directory as cargo would, or target/ of the checkout); the node
# agent (unless NODE_AGENT_BIN names another) and the modelpilot binary are
# its debug builds.
cargo_target_dir="$(realpath -m -- "${CARGO_TARGET_DIR:-$repo_root/target}")"
node_agent_bin="$(realpath -m -- "${NODE_AGENT_BIN:-$cargo_target_dir/debug/modelpilot-node-agent}")"
modelpilot_bin="$cargo_target_dir/debug/modelpilot"
ports_file="$run_dir/ports.env"
agent_dir="$state_dir/agent"
prometheus_dir="$state_dir/prometheus"

# The network layout (docs/testing.md, "The network"). The real node's
# bridge holds the node's InternalIP; its pods get addresses from pod_cidr;
# kwok hands its fake pods addresses from kwok_cidr, which nothing routes.
node_name=modelpilot-node-0
node_ip=10.244.128.1
pod_cidr=10.244.128.0/24
bridge=mp-br0
cluster_cidr=10.244.0.0/16
kwok_cidr=10.244.0.0/17
service_cidr=10.96.0.0/16
netns_prefix=mp-
cni_bin_dir=/usr/lib/cni

# Daemons in start order; down.sh stops them in reverse. cluster_is_up
# wants every one of them alive.
control_plane=(etcd kube-apiserver kube-controller-manager kube-scheduler node-agent kwok kube-proxy
	prometheus)

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { printf '[cluster] error: %s\n' "$*" >&2; exit 1; }

# free_ports N: prints N distinct TCP ports on 127.0.0.1 that the kernel
# handed out for port 0 (all sockets are held open together, so the ports
# differ), then checked to be bindable again after the sockets closed.
free_ports() {
	python3 - "$1" <<'PY'
import socket, sys
n = int(sys.argv[1])
socks = []
for _ in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
ports = [s.getsockname()[1] for s in socks]
for s in socks:
    s.close()
for p in ports:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", p))
    except OSError as e:
        sys.exit(f"port {p} became busy: {e}")
    finally:
        s.close()
print(" ".join(map(str, ports)))
PY
}

pid_file() { printf '%s/%s.pid\n' "$run_dir" "$1"; }

# proc_start PID: the process's start time in clock ticks since boot, so a
# pid file is never mistaken for an unrelated process that reused the pid.
proc_start() {
	local stat fields
	stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
	stat="${stat##*) }"
	read -r -a fields <<<"$stat"
	printf '%s\n' "${fields[19]}"
}

# recorded_pid NAME: prints the pid from NAME's pid file if that process is
# still the one recorded (same start time); fails otherwise.
recorded_pid() {
	local f pid start
	f="$(pid_file "$1")"
	[[ -f "$f" ]] || return 1
	read -r pid start <"$f" || true
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	if [[ -n "${start:-}" ]]; then
		[[ "$(proc_start "$pid")" == "$start" ]] || return 1
	else
		kill -0 "$pid" 2>/dev/null || return 1 # pid file without a start time
	fi
	printf '%s\n' "$pid"
}

# is_running NAME: the process recorded in NAME's pid file is alive.
is_running() { recorded_pid "$1" >/dev/null; }

# start_daemon NAME CMD...: runs CMD in a session (and process group) of
# its own, logging to .cluster/logs/NAME.log, and records its pid, which is
# also its process-group id.
start_daemon() {
	local name="$1"; shift
	mkdir -p "$run_dir" "$log_dir"
	setsid "$@" >"$log_dir/$name.log" 2>&1 </dev/null 8>&- &
	local pid=$!
	printf '%s %s\n' "$pid" "$(proc_start "$pid")" >"$(pid_file "$name")"
	log "started $name (pid $pid, log .cluster/logs/$name.log)"
}

# stop_daemon NAME [TIMEOUT_S]: sends SIGTERM to NAME's process group, waits
# for every process in it to exit, escalates to SIGKILL after TIMEOUT_S.
stop_daemon() {
	local name="$1" timeout="${2:-20}" f pid deadline
	f="$(pid_file "$name")"
	[[ -f "$f" ]] || return 0
	if pid="$(recorded_pid "$name")" && group_alive "$pid"; then
		kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
		deadline=$((SECONDS + timeout))
		while group_alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
		if group_alive "$pid"; then
			log "$name (pgid $pid) ignored SIGTERM for ${timeout}s, sending SIGKILL"
			kill -KILL -- "-$pid" 2>/dev/null || true
			deadline=$((SECONDS + 5))
			while group_alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
		fi
		group_alive "$pid" && die "$name (pgid $pid) is still running"
		log "stopped $name (pgid $pid)"
	fi
	rm -f "$f"
}

# group_alive PGID: some process of the group is alive (zombies excluded).
group_alive() {
	local state
	# shellcheck disable=SC2009 # pgrep cannot tell zombies apart
	state="$(ps -o stat= -g "$1" 2>/dev/null | grep -v '^Z' || true)"
	[[ -n "$state" ]]
}

# wait_daemon NAME WHAT TIMEOUT_S CMD...: re-runs CMD until it succeeds,
# failing early if NAME's process died; on failure shows NAME's log tail.
wait_daemon() {
	local name="$1" what="$2" timeout="$3"; shift 3
	local deadline=$((SECONDS + timeout))
	while ((SECONDS < deadline)); do
		if "$@" >/dev/null 2>&1; then
			log "$name is ready ($what)"
			return 0
		fi
		if ! is_running "$name"; then
			tail -n 30 "$log_dir/$name.log" >&2 || true
			die "$name exited before becoming ready"
		fi
		sleep 0.25
	done
	tail -n 30 "$log_dir/$name.log" >&2 || true
	die "$name not ready ($what) after ${timeout}s"
}

# wait_http NAME URL TIMEOUT_S [CURL_ARGS...]: polls URL until it answers
# 2xx, failing early if NAME's process died; on failure shows its log tail.
wait_http() {
	local name="$1" url="$2" timeout="$3"; shift 3
	wait_daemon "$name" "$url" "$timeout" curl -fsS --max-time 2 "$@" "$url"
}

admin_curl_args() {
	printf '%s\n' --cacert "$pki_dir/ca.crt" --cert "$pki_dir/admin.crt" --key "$pki_dir/admin.key"
}

# cluster_is_up: every daemon is alive and the API server answers /readyz.
# Sources the ports file as a side effect (API_PORT etc.).
cluster_is_up() {
	local name args
	[[ -f "$ports_file" && -f "$kubeconfig" ]] || return 1
	for name in "${control_plane[@]}"; do is_running "$name" || return 1; done
	# shellcheck disable=SC1090
	source "$ports_file"
	mapfile -t args < <(admin_curl_args)
	curl -fsS --max-time 3 "${args[@]}" "https://127.0.0.1:$API_PORT/readyz" >/dev/null 2>&1
}

# lock_state: serialises up.sh and down.sh of one checkout, so two callers
# never start two control planes over each other's pid files. The lock is
# fd 8, which daemons do not inherit (start_daemon closes it); a script run
# by a lock holder (up.sh running down.sh) sees CLUSTER_LOCK_HELD.
lock_state() {
	[[ "${CLUSTER_LOCK_HELD:-}" == 1 ]] && return 0
	mkdir -p "$state_dir"
	exec 8>"$state_dir/.lock"
	flock -w 600 8 || die "another cluster up/down still holds $state_dir/.lock after 600s"
	export CLUSTER_LOCK_HELD=1
}

# wait_until DESCRIPTION TIMEOUT_S CMD...: re-runs CMD until it succeeds,
# failing after TIMEOUT_S (for conditions kubectl wait cannot express).
wait_until() {
	local what="$1" timeout="$2"; shift 2
	local deadline=$((SECONDS + timeout))
	until "$@" >/dev/null 2>&1; do
		((SECONDS < deadline)) || die "timed out after ${timeout}s waiting for $what"
		sleep 0.25
	done
}

# regex_quote S: S as an extended regular expression matching S literally
# (for pgrep -f).
regex_quote() { printf '%s' "$1" | sed 's/[].*^$+?(){}|[\]/\\&/g'; }

# has_caps: the effective capability set holds CAP_NET_ADMIN (12) and
# CAP_SYS_ADMIN (21): routes, the bridge, veths and iptables rules need the
# first, network and mount namespaces the second.
has_caps() {
	local hex
	hex="$(awk '/^CapEff:/ {print $2}' /proc/self/status 2>/dev/null)" || return 1
	[[ -n "$hex" ]] || return 1
	(((16#$hex >> 12) & 1 && (16#$hex >> 21) & 1))
}

# require_privileges WHAT: fails early, saying why, unless this runs as root
# with CAP_NET_ADMIN and CAP_SYS_ADMIN.
require_privileges() {
	local what="$1"
	if ((EUID != 0)) || ! has_caps; then
		if ((EUID != 0)); then
			printf '[cluster] error: %s needs root (with CAP_NET_ADMIN and CAP_SYS_ADMIN).\n' "$what" >&2
		else
			printf '[cluster] error: %s runs as root but without CAP_NET_ADMIN and CAP_SYS_ADMIN\n' \
				"$what" >&2
			printf '[cluster]   (a container without privileges?), which it needs.\n' >&2
		fi
		printf '[cluster]   The local cluster runs a real node: its pods get network namespaces on the\n' >&2
		printf '[cluster]   bridge %s, kube-proxy writes iptables rules, and guard routes are installed.\n' "$bridge" >&2
		printf '[cluster]   Run it as root (for example: sudo -E %s).\n' "$what" >&2
		exit 1
	fi
}

# require_host_tools: the host programs the real node and kube-proxy need
# (Debian packages in .ci/run), or a clear list of what is missing.
require_host_tools() {
	local missing=() t
	for t in ip iptables iptables-save ip6tables nft conntrack; do
		command -v "$t" >/dev/null || missing+=("$t")
	done
	for t in bridge host-local loopback; do
		[[ -x "$cni_bin_dir/$t" ]] || missing+=("$cni_bin_dir/$t")
	done
	((${#missing[@]} == 0)) && return 0
	die "missing host tools: ${missing[*]} (apt-get install iproute2 iptables nftables conntrack" \
		"containernetworking-plugins)"
}
