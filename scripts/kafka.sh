#!/usr/bin/env bash
# kafka.sh — a single-node Apache Kafka (KRaft) for wail's Kafka log tests.
#
#   scripts/kafka.sh up       fetch the jars if missing, format once, start, wait
#   scripts/kafka.sh down     stop the broker (SIGTERM, wait; data is kept)
#   scripts/kafka.sh restart  down, then up (tests of outages)
#   scripts/kafka.sh status   "up ..." (exit 0) or "down" (exit 3)
#   scripts/kafka.sh env      export lines for: eval "$(scripts/kafka.sh env)"
#
# What it runs: kafka.Kafka from Maven Central (version in scripts/kafka/pom.xml)
# on Java 17+, as broker and controller in one process:
#   PLAINTEXT  127.0.0.1:$WAIL_KAFKA_PORT             (default 9092)
#   CONTROLLER 127.0.0.1:$WAIL_KAFKA_CONTROLLER_PORT  (default 9093)
# Everything lives under $WAIL_KAFKA_CACHE (default /var/lib/wail-kafka):
#   libs/             the jars (fetched again only when pom.xml changes)
#   data/             the log dirs (formatted once; "down" keeps them)
#   server.properties rendered from scripts/kafka/server.properties.in
#   kafka.pid, kafka.log
# "up" waits up to $WAIL_KAFKA_WAIT seconds (default 240) for the broker to
# answer: on a loaded 2-core machine a restart took over 100 s.
# Needs java (17+) and mvn; installs kcat (the tests' independent client) with
# apt when missing. Idempotent: "up" on a running broker only checks it answers.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=jars.sh
source "$HERE/jars.sh"
SRC=$HERE/kafka
CACHE=${WAIL_KAFKA_CACHE:-/var/lib/wail-kafka}
PORT=${WAIL_KAFKA_PORT:-9092}
CONTROLLER_PORT=${WAIL_KAFKA_CONTROLLER_PORT:-9093}
ADDR=127.0.0.1:$PORT
WAIT_SECS=${WAIL_KAFKA_WAIT:-240}
LIBS=$CACHE/libs
DATA=$CACHE/data
PIDFILE=$CACHE/kafka.pid
LOGFILE=$CACHE/kafka.log
CONF=$CACHE/server.properties
LOG4J=$CACHE/log4j2.properties

log() { printf '== kafka: %s\n' "$*" >&2; }
die() { printf 'kafka.sh: error: %s\n' "$*" >&2; exit 1; }

# --- prerequisites -------------------------------------------------------------

need_tools() {
	command -v java >/dev/null || die "java not found (Kafka needs Java 17+)"
	command -v mvn >/dev/null || die "mvn not found (the jars come from Maven Central)"
	if ! command -v kcat >/dev/null; then
		[[ $(id -u) == 0 ]] || die "kcat missing and not root: apt-get install kcat"
		log "installing kcat"
		export DEBIAN_FRONTEND=noninteractive
		apt-get install -y -qq kcat >/dev/null 2>&1 ||
			{ apt-get update -qq >/dev/null && apt-get install -y -qq kcat >/dev/null; } ||
			die "apt-get install kcat failed"
	fi
}

# fetch_libs: the jars of pom.xml in $LIBS (scripts/jars.sh).
fetch_libs() { fetch_jars "$SRC/pom.xml" "$LIBS" 'kafka_2.13-*.jar'; }

# render_config: server.properties and the log4j config, copied under $CACHE
# so the running broker does not depend on the work tree.
render_config() {
	sed -e "s|@DATA@|$DATA|g" -e "s|@PORT@|$PORT|g" -e "s|@CONTROLLER_PORT@|$CONTROLLER_PORT|g" \
		"$SRC/server.properties.in" >"$CONF.tmp"
	mv "$CONF.tmp" "$CONF"
	cp "$SRC/log4j2.properties" "$LOG4J"
}

kafka_java() { java -Xmx256m -Dlog4j2.configurationFile="file:$LOG4J" -cp "$LIBS/*" "$@"; }

# format_storage: once, when data/ has no meta.properties.
format_storage() {
	[[ -f $DATA/meta.properties ]] && return 0
	log "formatting $DATA"
	rm -rf "$DATA"
	local id
	id=$(kafka_java kafka.tools.StorageTool random-uuid 2>>"$LOGFILE" | tail -1)
	[[ $id =~ ^[A-Za-z0-9_-]{22}$ ]] || die "StorageTool random-uuid printed '$id' (see $LOGFILE)"
	if ! kafka_java kafka.tools.StorageTool format --standalone -t "$id" -c "$CONF" >>"$LOGFILE" 2>&1; then
		rm -rf "$DATA"
		tail -20 "$LOGFILE" >&2
		die "formatting storage failed"
	fi
}

# --- process -------------------------------------------------------------------

# running_pid: the broker's pid if the pid file names a live kafka.Kafka.
running_pid() {
	[[ -f $PIDFILE ]] || return 1
	local pid
	pid=$(<"$PIDFILE")
	[[ $pid =~ ^[0-9]+$ ]] && [[ -r /proc/$pid/cmdline ]] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'kafka\.Kafka' || return 1
	echo "$pid"
}

# answers: the broker serves metadata and lists itself (it is registered and
# unfenced). Asks about one missing topic to keep the answer small.
answers() {
	local out
	(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null || return 1 # fast "refused" while starting
	out=$(kcat -b "$ADDR" -L -t wail-kafka-probe -m 2 2>/dev/null) || return 1
	grep -q 'broker [0-9]* at' <<<"$out"
}

start() {
	[[ -f $LOGFILE ]] && (($(stat -c %s "$LOGFILE") > 50 << 20)) && mv -f "$LOGFILE" "$LOGFILE.1"
	log "starting broker on $ADDR (log: $LOGFILE)"
	# setsid: the broker outlives this shell and its process group. setsid
	# forks when it leads a process group (job control), so $! is not the
	# broker's pid: the shell inside writes its own pid, then becomes java.
	rm -f "$PIDFILE"
	setsid nohup bash -c 'echo $$ >"$1"; shift; exec "$@"' wail-kafka "$PIDFILE" \
		java -Xms256m -Xmx1g -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
		-Dlog4j2.configurationFile="file:$LOG4J" -Dkafka.logs.dir="$CACHE" \
		-cp "$LIBS/*" kafka.Kafka "$CONF" </dev/null >>"$LOGFILE" 2>&1 &
	local deadline=$((SECONDS + 10))
	until [[ -s $PIDFILE ]]; do
		((SECONDS < deadline)) || die "the broker's launcher wrote no pid file (log: $LOGFILE)"
		sleep 0.05
	done
}

wait_ready() {
	local deadline=$((SECONDS + WAIT_SECS))
	until answers; do
		if ! running_pid >/dev/null; then
			tail -30 "$LOGFILE" >&2
			die "broker exited while starting (log: $LOGFILE)"
		fi
		((SECONDS < deadline)) || die "broker not answering on $ADDR after ${WAIT_SECS}s (log: $LOGFILE)"
		sleep 0.2
	done
}

cmd_up() {
	mkdir -p "$CACHE"
	need_tools
	if pid=$(running_pid); then
		wait_ready
		log "up (pid $pid, $ADDR)"
		return 0
	fi
	if answers; then
		log "a broker not started by kafka.sh already answers on $ADDR; using it"
		return 0
	fi
	fetch_libs
	render_config
	format_storage
	start
	wait_ready
	log "up (pid $(<"$PIDFILE"), $ADDR)"
}

cmd_down() {
	local pid
	if ! pid=$(running_pid); then
		rm -f "$PIDFILE"
		log "down"
		return 0
	fi
	log "stopping pid $pid"
	kill -TERM "$pid"
	local deadline=$((SECONDS + 60))
	while kill -0 "$pid" 2>/dev/null; do
		if ((SECONDS >= deadline)); then
			log "pid $pid still running after 60s: SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
		fi
		sleep 0.2
	done
	rm -f "$PIDFILE"
	log "down"
}

cmd_status() {
	local pid
	if pid=$(running_pid); then
		if answers; then echo "up (pid $pid, $ADDR)"; else echo "starting (pid $pid, $ADDR not answering yet)"; fi
		return 0
	fi
	if command -v kcat >/dev/null && answers; then
		echo "up ($ADDR; not started by kafka.sh)"
		return 0
	fi
	echo "down"
	return 3
}

case ${1:-} in
up) cmd_up ;;
down) cmd_down ;;
restart) cmd_down && cmd_up ;;
status) cmd_status ;;
env) echo "export WAIL_TEST_KAFKA_BROKERS=$ADDR" ;;
*)
	echo "usage: $0 up|down|restart|status|env" >&2
	exit 2
	;;
esac
