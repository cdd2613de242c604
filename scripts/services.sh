#!/usr/bin/env bash
# services.sh — the real databases wail's SQL stores are tested against.
#
#   scripts/services.sh up       install if missing, create if missing, start, wait
#   scripts/services.sh down     stop everything (data is kept)
#   scripts/services.sh status   what runs, and the replica's lag
#   scripts/services.sh env      export lines for: eval "$(scripts/services.sh env)"
#   scripts/services.sh restart postgres|mariadb
#                                stop and start one database (tests of outages)
#
# What it runs (all on 127.0.0.1, nothing else listens):
#   PostgreSQL primary  :5433  Debian cluster "wail"         (/var/lib/postgresql/V/wail)
#   PostgreSQL replica  :5434  Debian cluster "wailreplica"  streaming from the
#                              primary (pg_basebackup -R, physical slot "wailreplica")
#                              Both: wal_level=logical, 10 WAL senders, 10 slots
#                              (so logical decoding, e.g. Debezium, can run too)
#   PostgreSQL other    :5435  Debian cluster "wailother": a server of its own,
#                              for the test of a replica DSN that names a server
#                              of another cluster (it must be refused), and of
#                              one with fsync off (wail may turn it off and on)
#   MariaDB             :3307  datadir /var/lib/wail-mariadb/data, its own
#                              socket, pid and log in /var/lib/wail-mariadb
# Users: wail/wail (database wail; may create schemas in it on PostgreSQL and
# databases named wail* on MariaDB), wail_repl/wail_repl (replication only).
# A default PostgreSQL cluster (5432) or MariaDB (3306) is left alone.
#
# Needs root and Debian 12 (apt). Works without systemd: clusters are run
# with pg_ctlcluster, MariaDB by starting mariadbd directly. Idempotent; a
# second "up" only checks that everything answers.
set -euo pipefail

PG_PORT=5433
PG_REPLICA_PORT=5434
PG_CLUSTER=wail
PG_REPLICA=wailreplica
PG_OTHER_PORT=5435
PG_OTHER=wailother
MY_PORT=3307
MY_BASE=/var/lib/wail-mariadb
MY_DATA=$MY_BASE/data
MY_SOCK=$MY_BASE/mysqld.sock
MY_PID=$MY_BASE/mysqld.pid
MY_CNF=$MY_BASE/my.cnf
MY_LOG=$MY_BASE/mysqld.log
WAIT_SECS=${WAIL_SERVICES_WAIT:-60}

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'services.sh: error: %s\n' "$*" >&2; exit 1; }

# install_file DEST: write stdin to DEST if it differs; returns 1 if unchanged.
install_file() {
	local tmp
	tmp=$(mktemp)
	cat >"$tmp"
	if [[ -f $1 ]] && cmp -s "$tmp" "$1"; then
		rm -f "$tmp"
		return 1
	fi
	install -m 0644 "$tmp" "$1"
	rm -f "$tmp"
}

need_root() { [[ $(id -u) == 0 ]] || die "run as root (it installs packages and starts daemons)"; }

# --- install -----------------------------------------------------------------

# pg_version: the newest installed PostgreSQL server (not just a client).
pg_version() {
	local bin
	for bin in /usr/lib/postgresql/*/bin/postgres; do
		if [[ -x $bin ]]; then basename "$(dirname "$(dirname "$bin")")"; fi
	done | sort -n | tail -1
}

install_missing() {
	local pkgs=()
	{ command -v pg_createcluster >/dev/null && [[ -n $(pg_version) ]]; } || pkgs+=(postgresql)
	command -v mariadbd >/dev/null || pkgs+=(mariadb-server)
	((${#pkgs[@]})) || return 0
	log "installing ${pkgs[*]}"
	# Keep the packages' own services (5432, 3306) from starting.
	local own_policy=
	if [[ ! -e /usr/sbin/policy-rc.d ]]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod +x /usr/sbin/policy-rc.d
		own_policy=1
	fi
	local rc=0
	{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${pkgs[@]}"; } >/tmp/wail-services-apt.log 2>&1 || rc=$?
	[[ -n $own_policy ]] && rm -f /usr/sbin/policy-rc.d
	((rc == 0)) || { tail -20 /tmp/wail-services-apt.log >&2; die "apt-get install ${pkgs[*]} failed (log: /tmp/wail-services-apt.log)"; }
}

# --- PostgreSQL ----------------------------------------------------------------

cluster_exists() { pg_lsclusters -h 2>/dev/null | awk -v c="$1" '$2 == c { found = 1 } END { exit !found }'; }
cluster_online() { pg_lsclusters -h 2>/dev/null | awk -v c="$1" '$2 == c && $4 ~ /^online/ { found = 1 } END { exit !found }'; }
psql_on() { local port=$1; shift; (cd / && runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$port" -d postgres "$@"); }

wait_pg() {
	local port=$1 i
	for ((i = 0; i < WAIT_SECS * 5; i++)); do
		pg_isready -q -h 127.0.0.1 -p "$port" && return 0
		sleep 0.2
	done
	die "PostgreSQL on 127.0.0.1:$port did not answer within ${WAIT_SECS}s (see /var/log/postgresql/)"
}

# Replication settings, the same on primary and replica (a standby needs
# max_wal_senders at least the primary's). wal_level = logical always, so
# that wail and the Debezium comparison (bench/debezium) run on identical
# settings; the physical streaming replica works with it unchanged.
PG_WAL_LEVEL=logical
PG_MAX_WAL_SENDERS=10
PG_MAX_REPLICATION_SLOTS=10

write_pg_conf() {
	local v=$1 name=$2
	install -d -o postgres -g postgres "/etc/postgresql/$v/$name/conf.d"
	install_file "/etc/postgresql/$v/$name/conf.d/wail.conf" <<-EOF
		# written by wail scripts/services.sh
		listen_addresses = '127.0.0.1'
		max_connections = 300
		wal_level = $PG_WAL_LEVEL
		max_wal_senders = $PG_MAX_WAL_SENDERS
		max_replication_slots = $PG_MAX_REPLICATION_SLOTS
		hot_standby = on
		hot_standby_feedback = on
		synchronous_commit = on
		fsync = on
	EOF
}

# running_settings_differ PORT: the running server's restart-only
# replication settings are not the ones written (e.g. the file was written
# while the server ran and it was never restarted).
running_settings_differ() {
	local got
	got=$(psql_on "$1" -At -c "SELECT current_setting('wal_level') || ' ' || current_setting('max_wal_senders')
		|| ' ' || current_setting('max_replication_slots')" 2>/dev/null) || return 1
	[[ $got != "$PG_WAL_LEVEL $PG_MAX_WAL_SENDERS $PG_MAX_REPLICATION_SLOTS" ]]
}

# configure_cluster writes the settings; a running cluster whose settings
# changed, or whose running values differ from them, is stopped here and
# started again by start_cluster (a failed start is left to its caller).
# Nothing restarts when the file and the running values already agree.
configure_cluster() {
	local v=$1 name=$2 port=$3
	if write_pg_conf "$v" "$name" && cluster_online "$name"; then
		log "settings changed: restarting PostgreSQL $v/$name"
		pg_ctlcluster "$v" "$name" stop -m fast || true
	elif cluster_online "$name" && running_settings_differ "$port"; then
		log "running settings differ from $name's wail.conf: restarting PostgreSQL $v/$name"
		pg_ctlcluster "$v" "$name" stop -m fast || true
	fi
}

# start_cluster starts a cluster unless it runs, and waits until it answers;
# it fails (without exiting) if pg_ctlcluster does.
start_cluster() {
	local v=$1 name=$2 port=$3
	install -d -o postgres -g postgres -m 2775 /var/run/postgresql
	if ! cluster_online "$name" && ! pg_ctlcluster "$v" "$name" start; then
		log "pg_ctlcluster $v $name start failed (see /var/log/postgresql/postgresql-$v-$name.log)"
		return 1
	fi
	wait_pg "$port"
}

pg_primary_up() {
	local v=$1
	if ! cluster_exists "$PG_CLUSTER"; then
		log "creating PostgreSQL cluster $v/$PG_CLUSTER on :$PG_PORT"
		pg_createcluster -p "$PG_PORT" --start-conf=manual "$v" "$PG_CLUSTER" -- \
			--auth-local=peer --auth-host=scram-sha-256 >/dev/null
	fi
	configure_cluster "$v" "$PG_CLUSTER" "$PG_PORT"
	start_cluster "$v" "$PG_CLUSTER" "$PG_PORT" || die "PostgreSQL primary $v/$PG_CLUSTER does not start"
	psql_on "$PG_PORT" <<-'EOF'
		SELECT format('CREATE ROLE wail LOGIN PASSWORD %L', 'wail')
		 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'wail') \gexec
		SELECT format('CREATE ROLE wail_repl LOGIN REPLICATION PASSWORD %L', 'wail_repl')
		 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'wail_repl') \gexec
		SELECT 'CREATE DATABASE wail OWNER wail'
		 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'wail') \gexec
		\connect wail
		-- Tests pause the replica's replay (the grant replicates).
		GRANT EXECUTE ON FUNCTION pg_wal_replay_pause(), pg_wal_replay_resume() TO wail;
	EOF
}

# clone_replica (re)creates the replica cluster from a base backup of the
# primary, with its own replication slot.
clone_replica() {
	local v=$1 data=/var/lib/postgresql/$1/$PG_REPLICA
	log "creating PostgreSQL replica $v/$PG_REPLICA on :$PG_REPLICA_PORT (pg_basebackup -R)"
	if cluster_exists "$PG_REPLICA"; then
		pg_ctlcluster "$v" "$PG_REPLICA" stop -m fast >/dev/null 2>&1 || true
		pg_dropcluster "$v" "$PG_REPLICA"
	fi
	pg_createcluster -p "$PG_REPLICA_PORT" --start-conf=manual "$v" "$PG_REPLICA" >/dev/null
	find "$data" -mindepth 1 -delete
	psql_on "$PG_PORT" -c "SELECT pg_drop_replication_slot('$PG_REPLICA') FROM pg_replication_slots WHERE slot_name = '$PG_REPLICA'" >/dev/null
	# -c fast: do not wait for a spread checkpoint (that takes minutes).
	runuser -u postgres -- pg_basebackup -D "$data" -R -c fast -X stream -C -S "$PG_REPLICA" \
		-d "host=127.0.0.1 port=$PG_PORT user=wail_repl password=wail_repl application_name=$PG_REPLICA" ||
		die "pg_basebackup from :$PG_PORT failed"
	configure_cluster "$v" "$PG_REPLICA" "$PG_REPLICA_PORT"
}

# pg_replica_up starts the replica, cloning it when it is missing or does
# not start (e.g. after a setting was lowered on the primary).
pg_replica_up() {
	local v=$1 data=/var/lib/postgresql/$1/$PG_REPLICA
	if ! cluster_exists "$PG_REPLICA" || [[ ! -e $data/standby.signal ]]; then
		clone_replica "$v"
	else
		configure_cluster "$v" "$PG_REPLICA" "$PG_REPLICA_PORT"
	fi
	start_cluster "$v" "$PG_REPLICA" "$PG_REPLICA_PORT" && return 0
	log "the replica does not start: cloning it again"
	clone_replica "$v"
	start_cluster "$v" "$PG_REPLICA" "$PG_REPLICA_PORT" || die "PostgreSQL replica $v/$PG_REPLICA does not start"
}

# pg_other_up starts the independent cluster (a database wail, user wail),
# creating it when it is missing.
pg_other_up() {
	local v=$1
	if ! cluster_exists "$PG_OTHER"; then
		log "creating PostgreSQL cluster $v/$PG_OTHER on :$PG_OTHER_PORT (another cluster)"
		pg_createcluster -p "$PG_OTHER_PORT" --start-conf=manual "$v" "$PG_OTHER" -- \
			--auth-local=peer --auth-host=scram-sha-256 >/dev/null
	fi
	configure_cluster "$v" "$PG_OTHER" "$PG_OTHER_PORT"
	start_cluster "$v" "$PG_OTHER" "$PG_OTHER_PORT" || die "PostgreSQL $v/$PG_OTHER does not start"
	psql_on "$PG_OTHER_PORT" <<-'EOF'
		SELECT format('CREATE ROLE wail LOGIN PASSWORD %L', 'wail')
		 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'wail') \gexec
		SELECT 'CREATE DATABASE wail OWNER wail'
		 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'wail') \gexec
		-- A test turns this server's fsync off and on again (a server whose
		-- commits are not durable is named at Open: TestNotDurableWarned).
		GRANT ALTER SYSTEM ON PARAMETER fsync TO wail;
		\c wail
		GRANT EXECUTE ON FUNCTION pg_reload_conf() TO wail;
	EOF
}

pg_up() {
	local v
	v=$(pg_version)
	[[ -n $v ]] || die "no PostgreSQL server under /usr/lib/postgresql"
	pg_primary_up "$v"
	pg_replica_up "$v"
	pg_other_up "$v"
}

pg_down() {
	local v name
	v=$(pg_version)
	[[ -n $v ]] || return 0
	for name in "$PG_OTHER" "$PG_REPLICA" "$PG_CLUSTER"; do
		if cluster_online "$name"; then
			log "stopping PostgreSQL $v/$name"
			pg_ctlcluster "$v" "$name" stop -m fast
		fi
	done
}

# --- MariaDB -------------------------------------------------------------------

my_client() { mariadb --no-defaults --protocol=socket --socket="$MY_SOCK" -uroot "$@"; }
my_alive() { [[ -S $MY_SOCK ]] && mariadb-admin --no-defaults --socket="$MY_SOCK" -uroot ping >/dev/null 2>&1; }

write_my_cnf() {
	install -d -o mysql -g mysql "$MY_BASE" "$MY_DATA"
	install_file "$MY_CNF" <<-EOF
		# written by wail scripts/services.sh
		[mariadbd]
		datadir = $MY_DATA
		socket = $MY_SOCK
		pid-file = $MY_PID
		log-error = $MY_LOG
		port = $MY_PORT
		bind-address = 127.0.0.1
		skip-networking = 0
		skip-name-resolve
		max_connections = 300
		max_allowed_packet = 64M
		innodb_buffer_pool_size = 256M
		# Durable before visible: InnoDB makes a commit visible before its
		# redo is flushed unless the binlog's two-phase commit is on, so the
		# binlog (synced) is what gives wail's durability rule on reads.
		innodb_flush_log_at_trx_commit = 1
		server_id = 1
		log_bin = mariadb-bin
		binlog_format = ROW
		sync_binlog = 1
		binlog_expire_logs_seconds = 86400
	EOF
}

my_up() {
	if write_my_cnf && my_alive; then
		log "settings changed: restarting MariaDB"
		my_down
	fi
	if [[ ! -d $MY_DATA/mysql ]]; then
		log "initialising MariaDB in $MY_DATA"
		mariadb-install-db --defaults-file="$MY_CNF" --user=mysql --auth-root-authentication-method=socket \
			--skip-test-db >"$MY_BASE/install.log" 2>&1 || { tail -20 "$MY_BASE/install.log" >&2; die "mariadb-install-db failed"; }
	fi
	if ! my_alive; then
		log "starting MariaDB on :$MY_PORT"
		setsid mariadbd --defaults-file="$MY_CNF" --user=mysql </dev/null >>"$MY_LOG" 2>&1 &
		local i
		for ((i = 0; i < WAIT_SECS * 5; i++)); do
			my_alive && break
			sleep 0.2
		done
		my_alive || { tail -20 "$MY_LOG" >&2; die "MariaDB on :$MY_PORT did not answer within ${WAIT_SECS}s (log: $MY_LOG)"; }
	fi
	my_client <<-'EOF'
		CREATE DATABASE IF NOT EXISTS wail;
		CREATE USER IF NOT EXISTS 'wail'@'%' IDENTIFIED BY 'wail';
		CREATE USER IF NOT EXISTS 'wail'@'localhost' IDENTIFIED BY 'wail';
		GRANT ALL PRIVILEGES ON `wail%`.* TO 'wail'@'%';
		GRANT ALL PRIVILEGES ON `wail%`.* TO 'wail'@'localhost';
		CREATE USER IF NOT EXISTS 'wail_repl'@'%' IDENTIFIED BY 'wail_repl';
		GRANT REPLICATION SLAVE ON *.* TO 'wail_repl'@'%';
	EOF
}

my_down() {
	[[ -f $MY_PID ]] || return 0
	local pid i
	pid=$(cat "$MY_PID")
	kill -0 "$pid" 2>/dev/null || { rm -f "$MY_PID"; return 0; }
	log "stopping MariaDB (pid $pid)"
	kill -TERM "$pid"
	for ((i = 0; i < WAIT_SECS * 5; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.2
	done
	die "MariaDB (pid $pid) did not stop within ${WAIT_SECS}s"
}

# --- commands ------------------------------------------------------------------

cmd_status() {
	local v rc=0
	v=$(pg_version)
	if [[ -n $v ]] && cluster_online "$PG_CLUSTER"; then
		echo "postgres primary  127.0.0.1:$PG_PORT  up ($v/$PG_CLUSTER)"
	else
		echo "postgres primary  127.0.0.1:$PG_PORT  down"; rc=1
	fi
	if [[ -n $v ]] && cluster_online "$PG_REPLICA"; then
		local lag
		lag=$(psql_on "$PG_REPLICA_PORT" -At -c "SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN '0 (caught up)'
			ELSE coalesce((now() - pg_last_xact_replay_timestamp())::text, 'unknown') END
			|| CASE WHEN pg_is_wal_replay_paused() THEN ', replay paused' ELSE '' END" 2>&1) || lag="? ($lag)"
		echo "postgres replica  127.0.0.1:$PG_REPLICA_PORT  up ($v/$PG_REPLICA), lag $lag"
	else
		echo "postgres replica  127.0.0.1:$PG_REPLICA_PORT  down"; rc=1
	fi
	if [[ -n $v ]] && cluster_online "$PG_OTHER"; then
		echo "postgres other    127.0.0.1:$PG_OTHER_PORT  up ($v/$PG_OTHER)"
	else
		echo "postgres other    127.0.0.1:$PG_OTHER_PORT  down"; rc=1
	fi
	if my_alive; then
		echo "mariadb           127.0.0.1:$MY_PORT  up ($(my_client -N -e 'SELECT VERSION()'), datadir $MY_DATA)"
	else
		echo "mariadb           127.0.0.1:$MY_PORT  down"; rc=1
	fi
	return $rc
}

cmd_env() {
	echo "export WAIL_TEST_PG_DSN='postgres://wail:wail@127.0.0.1:$PG_PORT/wail?sslmode=disable'"
	echo "export WAIL_TEST_PG_REPLICA_DSN='postgres://wail:wail@127.0.0.1:$PG_REPLICA_PORT/wail?sslmode=disable'"
	echo "export WAIL_TEST_PG_OTHER_DSN='postgres://wail:wail@127.0.0.1:$PG_OTHER_PORT/wail?sslmode=disable'"
	echo "export WAIL_TEST_MYSQL_DSN='wail:wail@tcp(127.0.0.1:$MY_PORT)/wail'"
}

case ${1:-} in
up)
	need_root
	install_missing
	pg_up
	my_up
	cmd_status
	;;
down)
	need_root
	pg_down
	my_down
	;;
status) cmd_status ;;
env) cmd_env ;;
restart)
	need_root
	case ${2:-} in
	postgres)
		pg_ctlcluster "$(pg_version)" "$PG_CLUSTER" restart -m fast
		wait_pg "$PG_PORT"
		;;
	mariadb)
		my_down
		my_up
		;;
	*)
		echo "usage: $0 restart postgres|mariadb" >&2
		exit 2
		;;
	esac
	;;
*)
	echo "usage: $0 up|down|status|env|restart postgres|mariadb" >&2
	exit 2
	;;
esac
