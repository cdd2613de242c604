#!/usr/bin/env bash
# run.sh — wail and Debezium side by side on the same PostgreSQL and Kafka.
#
#   bench/debezium/run.sh          (make bench-vs-debezium) the whole comparison:
#                                  services up, Debezium fetched, bin/wail built,
#                                  `wail bench vs-debezium` run, everything cleaned up
#   bench/debezium/run.sh fetch    fetch Debezium Server into the cache only
#   bench/debezium/run.sh server   render the configuration and exec Debezium Server
#                                  in the foreground (what the bench starts; the
#                                  process becomes the JVM, so its pid is the JVM's)
#   bench/debezium/run.sh cleanup  drop what an interrupted run left behind:
#                                  replication slots and publications wail_vs_*,
#                                  tables vs_* and wail_vs_* (Kafka topics are
#                                  deleted by the bench itself)
#
# Debezium Server 2.7.3.Final (PostgreSQL connector, pgoutput, Kafka sink) comes
# from Maven Central as io.debezium:debezium-server-dist:tar.gz (pom.xml here),
# unpacked once under $WAIL_DEBEZIUM_CACHE (default /var/lib/wail-debezium):
#   dist/debezium-server/   the distribution (fetched again when pom.xml changes)
#   run/                    the running server's conf/application.properties,
#                           offsets.dat and debezium.log (replaced every run)
# The configuration is application.properties.in here; every setting and why
# is in that file and in docs/benchmarks.md ("wail vs Debezium").
#
# Extra arguments of the default command go to `wail bench vs-debezium`
# (e.g. --step-duration 10s, --max-steps 3; see `bin/wail bench vs-debezium --help`).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE=${WAIL_DEBEZIUM_CACHE:-/var/lib/wail-debezium}
DIST=$CACHE/dist/debezium-server
RUN=$CACHE/run

log() { printf '== debezium: %s\n' "$*" >&2; }
die() { printf 'bench/debezium/run.sh: error: %s\n' "$*" >&2; exit 1; }

# fetch: unpack the distribution of pom.xml into $CACHE/dist, unless it is
# there for this very pom (its hash is stamped in $CACHE/dist/.pom.sha256).
fetch() {
	command -v java >/dev/null || die "java not found (Debezium 2.7 needs Java 11+)"
	command -v mvn >/dev/null || die "mvn not found (Debezium comes from Maven Central)"
	mkdir -p "$CACHE"
	local want have=""
	want=$(sha256sum "$HERE/pom.xml" | cut -d' ' -f1)
	[[ -f $CACHE/dist/.pom.sha256 ]] && have=$(<"$CACHE/dist/.pom.sha256")
	[[ $have == "$want" && -d $DIST/lib ]] && return 0
	log "fetching Debezium Server (mvn dependency:unpack)"
	rm -rf "$CACHE/dist.new" "$CACHE/markers.new"
	# markersDirectory: the plugin skips artifacts it has marked as unpacked;
	# a fresh marker directory (not target/ in the work tree) unpacks always.
	if ! mvn -q -B -Dstyle.color=never -f "$HERE/pom.xml" dependency:unpack \
		-DoutputDirectory="$CACHE/dist.new" -DmarkersDirectory="$CACHE/markers.new" >"$CACHE/mvn.log" 2>&1; then
		tail -30 "$CACHE/mvn.log" >&2
		die "mvn failed (full output in $CACHE/mvn.log)"
	fi
	ls "$CACHE"/dist.new/debezium-server/debezium-server-*-runner.jar >/dev/null 2>&1 || die "no runner jar in $CACHE/dist.new"
	rm -rf "$CACHE/markers.new"
	echo "$want" >"$CACHE/dist.new/.pom.sha256"
	rm -rf "$CACHE/dist"
	mv "$CACHE/dist.new" "$CACHE/dist"
}

# server: render application.properties from the DBZ_* environment (set by
# `wail bench vs-debezium`) and become Debezium Server.
server() {
	fetch
	: "${DBZ_TABLE:?}" "${DBZ_SLOT:?}" "${DBZ_PREFIX:?}"
	rm -rf "$RUN"
	mkdir -p "$RUN/conf"
	sed -e "s|@BROKERS@|${DBZ_BROKERS:-127.0.0.1:9092}|g" \
		-e "s|@PG_HOST@|${DBZ_PG_HOST:-127.0.0.1}|g" -e "s|@PG_PORT@|${DBZ_PG_PORT:-5433}|g" \
		-e "s|@PG_USER@|${DBZ_PG_USER:-wail_repl}|g" -e "s|@PG_PASSWORD@|${DBZ_PG_PASSWORD:-wail_repl}|g" \
		-e "s|@PG_DB@|${DBZ_PG_DB:-wail}|g" \
		-e "s|@TABLE@|$DBZ_TABLE|g" -e "s|@SLOT@|$DBZ_SLOT|g" -e "s|@PREFIX@|$DBZ_PREFIX|g" -e "s|@RUN@|$RUN|g" \
		-e "s|@LINGER_MS@|${DBZ_LINGER_MS:-0}|g" -e "s|@BATCH_BYTES@|${DBZ_BATCH_BYTES:-16384}|g" \
		-e "s|@MAX_BATCH@|${DBZ_MAX_BATCH:-2048}|g" -e "s|@MAX_QUEUE@|${DBZ_MAX_QUEUE:-8192}|g" \
		-e "s|@POLL_MS@|${DBZ_POLL_MS:-10}|g" -e "s|@HTTP_PORT@|${DBZ_HTTP_PORT:-18080}|g" \
		"$HERE/application.properties.in" >"$RUN/conf/application.properties"
	cd "$DIST"
	local runner
	runner=$(ls debezium-server-*-runner.jar)
	# The distribution's own run.sh, minus its optional JMX and metrics agents.
	# No heap flags: the JVM's defaults, as the distribution ships.
	exec java ${DBZ_JAVA_OPTS:-} -cp "$runner:$RUN/conf:lib/*" io.debezium.server.Main >>"$RUN/debezium.log" 2>&1
}

psql_wail() { (cd / && runuser -u postgres -- psql -X -q -At -v ON_ERROR_STOP=1 -p 5433 -d wail "$@"); }

# cleanup: what a killed run leaves behind. Slots still in use (a live
# Debezium) are skipped with a message.
cleanup() {
	psql_wail <<-'SQL'
		SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
		 WHERE slot_name LIKE 'wail\_vs\_%' AND NOT active;
		SELECT format('DROP PUBLICATION IF EXISTS %I', pubname) FROM pg_publication WHERE pubname LIKE 'wail\_vs\_%' \gexec
		SELECT format('DROP TABLE IF EXISTS %I', tablename) FROM pg_tables
		 WHERE schemaname = 'public' AND (tablename LIKE 'vs\_%' OR tablename LIKE 'wail\_vs\_%') \gexec
		DELETE FROM wail__catalog WHERE name LIKE 'vs\_%';
	SQL
	log "dropped leftover wail_vs_* slots and publications and vs_* tables"
}

all() {
	[[ $(id -u) == 0 ]] || die "run as root (services.sh and kafka.sh start the databases)"
	bash "$ROOT/scripts/services.sh" up >/dev/null
	bash "$ROOT/scripts/kafka.sh" up
	fetch
	(cd "$ROOT" && go build -o bin/wail ./cmd/wail)
	eval "$(bash "$ROOT/scripts/services.sh" env)"
	eval "$(bash "$ROOT/scripts/kafka.sh" env)"
	local rc=0
	(cd "$ROOT" && bin/wail bench vs-debezium --dsn "$WAIL_TEST_PG_DSN" --brokers "$WAIL_TEST_KAFKA_BROKERS" \
		--debezium-cmd "bash $HERE/run.sh server" --wail-bin "$ROOT/bin/wail" \
		--json-out "$CACHE/last-run.json" --plot "$ROOT/docs/bench-vs-debezium.svg" "$@") || rc=$?
	cleanup || true
	return $rc
}

case ${1:-all} in
all) [[ $# -gt 0 ]] && shift; all "$@" ;;
fetch) fetch ;;
server) server ;;
cleanup) cleanup ;;
--*) all "$@" ;;
*)
	echo "usage: $0 [all|fetch|server|cleanup] [wail bench vs-debezium flags]" >&2
	exit 2
	;;
esac
