#!/usr/bin/env bash
# cassandra.sh — a small Apache Cassandra cluster for wail's Cassandra store tests.
#
#   scripts/cassandra.sh up          fetch the jars if missing, start every node, wait until all are UN
#   scripts/cassandra.sh down        stop every node (SIGTERM, wait; data is kept)
#   scripts/cassandra.sh restart     down, then up
#   scripts/cassandra.sh status      "up ..." (exit 0), "starting"/"partial" (exit 0/3) or "down" (exit 3)
#   scripts/cassandra.sh env         export lines for: eval "$(scripts/cassandra.sh env)"
#   scripts/cassandra.sh kill N      SIGKILL node N (crash tests), data kept
#   scripts/cassandra.sh start N     start node N if it is not running, wait until it answers
#   scripts/cassandra.sh pause N     SIGSTOP node N (it stays in the ring, answers nothing)
#   scripts/cassandra.sh resume N    SIGCONT node N
#   scripts/cassandra.sh pid N       node N's pid (exit 3 when it is not running)
#   scripts/cassandra.sh nodetool N ARGS...   nodetool against node N (JMX on 127.0.0.1)
#
# What it runs: org.apache.cassandra.service.CassandraDaemon from Maven Central
# (version in scripts/cassandra/pom.xml) on Java 17, $WAIL_CASSANDRA_NODES nodes
# (default 3), node N on 127.0.0.N with the same ports:
#   CQL 127.0.0.N:9042, internode 127.0.0.N:7000, JMX 127.0.0.1:(7198+N)
# data center dc1, rack rack1 (GossipingPropertyFileSnitch), 512 MiB heap each,
# batch commit log, no hints (scripts/cassandra/cassandra.yaml.in says why).
# Everything lives under $WAIL_CASSANDRA_CACHE (default /var/lib/wail-cassandra):
#   libs/                   the jars (fetched again only when pom.xml changes)
#   nodeN/                  data, commit log, cassandra.yaml, cassandra.pid, cassandra.log
# Needs java (17+) and mvn. Idempotent: "up" on a running cluster only checks it.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=jars.sh
source "$HERE/jars.sh"
SRC=$HERE/cassandra
CACHE=${WAIL_CASSANDRA_CACHE:-/var/lib/wail-cassandra}
NODES=${WAIL_CASSANDRA_NODES:-3}
PORT=9042
WAIT_SECS=${WAIL_CASSANDRA_WAIT:-300}
LIBS=$CACHE/libs

log() { printf '== cassandra: %s\n' "$*" >&2; }
die() { printf 'cassandra.sh: error: %s\n' "$*" >&2; exit 1; }

addr() { echo "127.0.0.$1"; }
jmx_port() { echo $((7198 + $1)); }
node_dir() { echo "$CACHE/node$1"; }
hosts() {
	local i out=""
	for ((i = 1; i <= NODES; i++)); do out+="${out:+,}$(addr "$i")"; done
	echo "$out"
}
check_node() { [[ $1 =~ ^[0-9]+$ ]] && (($1 >= 1 && $1 <= NODES)) || die "no node '$1' (nodes are 1..$NODES)"; }

# --- prerequisites -------------------------------------------------------------

need_tools() {
	command -v java >/dev/null || die "java not found (Cassandra 5.0 needs Java 17)"
	command -v mvn >/dev/null || die "mvn not found (the jars come from Maven Central)"
}

# fetch_libs: the jars of pom.xml in $LIBS (scripts/jars.sh).
fetch_libs() { fetch_jars "$SRC/pom.xml" "$LIBS" 'cassandra-all-*.jar'; }

# render_config N: node N's cassandra.yaml, rack file and logging config,
# copied under its directory so a running node does not depend on the work tree.
render_config() {
	local dir seeds="" i
	dir=$(node_dir "$1")
	for ((i = 1; i <= NODES; i++)); do seeds+="${seeds:+,}$(addr "$i"):7000"; done
	mkdir -p "$dir"/{data,commitlog,saved_caches,hints,cdc_raw}
	sed -e "s|@NODE_DIR@|$dir|g" -e "s|@ADDR@|$(addr "$1")|g" -e "s|@SEEDS@|$seeds|g" \
		"$SRC/cassandra.yaml.in" >"$dir/cassandra.yaml.tmp"
	mv "$dir/cassandra.yaml.tmp" "$dir/cassandra.yaml"
	printf 'dc=dc1\nrack=rack1\n' >"$dir/cassandra-rackdc.properties"
	cp "$SRC/logback.xml" "$dir/logback.xml"
}

# --- process -------------------------------------------------------------------

# running_pid N: node N's pid if its pid file names a live CassandraDaemon.
running_pid() {
	local pidfile pid
	pidfile=$(node_dir "$1")/cassandra.pid
	[[ -f $pidfile ]] || return 1
	pid=$(<"$pidfile")
	[[ $pid =~ ^[0-9]+$ ]] && [[ -r /proc/$pid/cmdline ]] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'CassandraDaemon' || return 1
	echo "$pid"
}

# answers N: node N accepts CQL connections (the native transport starts
# only once the node has joined the ring).
answers() { (exec 3<>"/dev/tcp/$(addr "$1")/$PORT") 2>/dev/null; }

# nodetool N ARGS: Cassandra's nodetool against node N, with the JPMS flags
# of jvm.options (it needs them too).
nodetool() {
	local n=$1 opts=()
	shift
	mapfile -t opts < <(grep -e '^--add-' -e '^-Djdk.attach' "$SRC/jvm.options")
	java -Xmx128m -XX:-UsePerfData -XX:TieredStopAtLevel=1 "${opts[@]}" -Dcassandra.logdir="$CACHE" -cp "$LIBS/*" \
		org.apache.cassandra.tools.NodeTool -h 127.0.0.1 -p "$(jmx_port "$n")" "$@"
}

start_node() {
	local n=$1 dir opts=()
	dir=$(node_dir "$n")
	render_config "$n"
	[[ -f $dir/cassandra.log ]] && (($(stat -c %s "$dir/cassandra.log") > 50 << 20)) && mv -f "$dir/cassandra.log" "$dir/cassandra.log.1"
	mapfile -t opts < <(grep -v '^[[:space:]]*\(#\|$\)' "$SRC/jvm.options")
	log "starting node $n on $(addr "$n"):$PORT (log: $dir/cassandra.log)"
	rm -f "$dir/cassandra.pid"
	# setsid: the node outlives this shell and its process group; the shell
	# inside writes its own pid, then becomes java (see kafka.sh). The
	# subshell (for the working directory) becomes setsid itself (exec)
	# with the log as its output: nothing keeps the caller's stdout open,
	# so a caller that reads it to the end (a test) is not held up.
	(
		cd "$dir" || exit 1
		exec setsid nohup bash -c 'echo $$ >"$1"; shift; exec "$@"' wail-cassandra "$dir/cassandra.pid" \
			java "${opts[@]}" \
			-Dcassandra.config="file://$dir/cassandra.yaml" \
			-Dcassandra-rackdc.properties="file://$dir/cassandra-rackdc.properties" \
			-Dlogback.configurationFile="file://$dir/logback.xml" \
			-Dcassandra.logdir="$dir" -Dcassandra.storagedir="$dir" \
			-Dcassandra.jmx.local.port="$(jmx_port "$n")" \
			-XX:HeapDumpPath="$dir" -XX:ErrorFile="$dir/hs_err_%p.log" \
			-cp "$LIBS/*" org.apache.cassandra.service.CassandraDaemon
	) </dev/null >>"$dir/cassandra.log" 2>&1 &
	local deadline=$((SECONDS + 10))
	until [[ -s $dir/cassandra.pid ]]; do
		((SECONDS < deadline)) || die "node $n's launcher wrote no pid file (log: $dir/cassandra.log)"
		sleep 0.05
	done
}

wait_node() {
	local n=$1 deadline=$((SECONDS + WAIT_SECS))
	until answers "$n"; do
		if ! running_pid "$n" >/dev/null; then
			tail -30 "$(node_dir "$n")/cassandra.log" >&2
			die "node $n exited while starting (log: $(node_dir "$n")/cassandra.log)"
		fi
		((SECONDS < deadline)) || die "node $n not answering on $(addr "$n"):$PORT after ${WAIT_SECS}s (log: $(node_dir "$n")/cassandra.log)"
		sleep 0.5
	done
}

# wait_ring: every node sees every node Up and Normal.
wait_ring() {
	local n deadline=$((SECONDS + WAIT_SECS)) out
	for ((n = 1; n <= NODES; n++)); do
		until out=$(nodetool "$n" status 2>&1) && (($(grep -c '^UN ' <<<"$out") == NODES)); do
			((SECONDS < deadline)) || { echo "$out" >&2; die "node $n does not see $NODES nodes UN after ${WAIT_SECS}s"; }
			sleep 1
		done
	done
}

cmd_up() {
	mkdir -p "$CACHE"
	need_tools
	fetch_libs
	local n started=()
	for ((n = 1; n <= NODES; n++)); do
		if ! running_pid "$n" >/dev/null; then
			start_node "$n"
			started+=("$n")
		fi
	done
	for ((n = 1; n <= NODES; n++)); do wait_node "$n"; done
	wait_ring
	log "up ($NODES nodes: $(hosts); started now: ${started[*]:-none})"
}

stop_pid() {
	local pid=$1 deadline=$((SECONDS + 60))
	kill -CONT "$pid" 2>/dev/null || true # a paused node cannot handle SIGTERM
	kill -TERM "$pid" 2>/dev/null || return 0
	while kill -0 "$pid" 2>/dev/null; do
		if ((SECONDS >= deadline)); then
			log "pid $pid still running after 60s: SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
		fi
		sleep 0.2
	done
}

cmd_down() {
	local n pid
	for ((n = 1; n <= NODES; n++)); do
		if pid=$(running_pid "$n"); then
			log "stopping node $n (pid $pid)"
			stop_pid "$pid"
		fi
		rm -f "$(node_dir "$n")/cassandra.pid"
	done
	log "down"
}

cmd_status() {
	local n pid up=0 lines=""
	for ((n = 1; n <= NODES; n++)); do
		if pid=$(running_pid "$n"); then
			if answers "$n"; then
				up=$((up + 1))
				lines+=" node$n=up(pid $pid)"
			else
				lines+=" node$n=starting(pid $pid)"
			fi
		else
			lines+=" node$n=down"
		fi
	done
	if ((up == NODES)); then
		echo "up ($(hosts):$PORT;$lines)"
		return 0
	fi
	if ((up == 0)) && [[ $lines != *pid* ]]; then
		echo "down"
		return 3
	fi
	echo "partial:$lines"
	return 3
}

cmd_kill() {
	check_node "$1"
	local pid
	pid=$(running_pid "$1") || die "node $1 is not running"
	kill -KILL "$pid"
	while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
	rm -f "$(node_dir "$1")/cassandra.pid"
	log "node $1 killed (pid $pid)"
}

cmd_start() {
	check_node "$1"
	need_tools
	running_pid "$1" >/dev/null || start_node "$1"
	wait_node "$1"
	log "node $1 answers"
}

signal_node() {
	check_node "$2"
	local pid
	pid=$(running_pid "$2") || die "node $2 is not running"
	kill "-$1" "$pid"
}

case ${1:-} in
up) cmd_up ;;
down) cmd_down ;;
restart) cmd_down && cmd_up ;;
status) cmd_status ;;
env)
	echo "export WAIL_TEST_CASSANDRA_HOSTS=$(hosts)"
	echo "export WAIL_TEST_CASSANDRA_DC=dc1"
	;;
kill) cmd_kill "${2:-}" ;;
start) cmd_start "${2:-}" ;;
pause) signal_node STOP "${2:-}" ;;
resume) signal_node CONT "${2:-}" ;;
pid)
	check_node "${2:-}"
	running_pid "$2" || exit 3
	;;
nodetool)
	check_node "${2:-}"
	n=$2
	shift 2
	nodetool "$n" "$@"
	;;
*)
	echo "usage: $0 up|down|restart|status|env|kill N|start N|pause N|resume N|pid N|nodetool N ARGS..." >&2
	exit 2
	;;
esac
