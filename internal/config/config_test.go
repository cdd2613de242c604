package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "wail.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultsAreValid(t *testing.T) {
	t.Parallel()
	c, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if c.Limits.MaxKeyBytes != 4096 || c.Limits.MaxValueBytes != 1<<20 || c.Defaults.Partitions != 8 ||
		c.Defaults.VisibilityWindow != 10*time.Second || c.Defaults.FailureMode != "transactional" {
		t.Fatalf("defaults changed: %+v", c)
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		yaml    string
		wantErr string
		check   func(*testing.T, Config)
	}{
		{name: "empty file is all defaults", yaml: "", check: func(t *testing.T, c Config) {
			if c.Listen != Default().Listen {
				t.Fatal(c.Listen)
			}
		}},
		{name: "overrides keep other defaults", yaml: "listen: 0.0.0.0:9000\nlimits:\n  max_key_bytes: 128\n", check: func(t *testing.T, c Config) {
			if c.Listen != "0.0.0.0:9000" || c.Limits.MaxKeyBytes != 128 || c.Limits.MaxValueBytes != 1<<20 {
				t.Fatalf("%+v", c)
			}
		}},
		{name: "tables", yaml: "tables:\n  - name: orders\n    visibility_window: 3s\n    failure_mode: independent\n", check: func(t *testing.T, c Config) {
			if len(c.Tables) != 1 || c.Tables[0].VisibilityWindow != 3*time.Second || c.Tables[0].FailureMode != "independent" {
				t.Fatalf("%+v", c.Tables)
			}
		}},
		{name: "unknown key", yaml: "lisen: x\n", wantErr: "line 1: unknown key lisen (did you mean listen?)"},
		// An unknown key in a section was named with the Go type of the
		// section ("field writes_in_fligth not found in type struct {
		// Enabled bool ...}"), not where it is nor what was meant.
		{name: "unknown key of a section", yaml: "proxy:\n  writes_in_fligth: 3\n",
			wantErr: "line 2: unknown key proxy.writes_in_fligth (did you mean proxy.writes_in_flight?)"},
		{name: "unknown key of a table", yaml: "tables:\n  - name: orders\n    partition: 4\n",
			wantErr: "line 3: unknown key tables[0].partition (did you mean tables[0].partitions?)"},
		{name: "a key of another section", yaml: "max_conns: 4\n", wantErr: "line 1: unknown key max_conns (did you mean store.max_conns?)"},
		{name: "a key in capitals", yaml: "Listen: 127.0.0.1:1\n", wantErr: "line 1: unknown key Listen (did you mean listen?)"},
		{name: "unknown key, nothing near", yaml: "resolver:\n  zzzzzz: 1\n", wantErr: "line 2: unknown key resolver.zzzzzz (see docs/reference.md)"},
		// A key without a value kept its default: "max_backlog:" left the
		// backlog bound at 200000, "enabled:" left a resolver on.
		{name: "a key without a value", yaml: "proxy:\n  max_backlog:\n", wantErr: "line 2: proxy.max_backlog has no value: give one, or remove the line to keep the default"},
		{name: "a switch without a value", yaml: "resolver:\n  enabled:\n", wantErr: "line 2: resolver.enabled has no value"},
		{name: "a section without settings", yaml: "security:\ntables:\n", check: func(t *testing.T, c Config) {}},
		{name: "a section given a value", yaml: "proxy: 3\n", wantErr: "line 1: proxy takes settings (key: value lines indented below it), not a single value"},
		{name: "a list given one value", yaml: "log:\n  kafka:\n    brokers: h:9092\n", wantErr: "line 3: log.kafka.brokers is a list: [a, b], or one \"- item\" line each"},
		{name: "mysql key longer than its column", yaml: "store:\n  kind: mysql\n  dsn: u:p@tcp(h:3306)/d\nlimits:\n  max_key_bytes: 4097\n",
			wantErr: "limits.max_key_bytes 4097: store.kind mysql keeps keys of at most 4096 bytes"},
		{name: "mysql key as long as its column", yaml: "store:\n  kind: mysql\n  dsn: u:p@tcp(h:3306)/d\nlimits:\n  max_key_bytes: 4096\n",
			check: func(t *testing.T, c Config) {}},
		{name: "cassandra key longer than its partition keys", yaml: "store:\n  kind: cassandra\n  cassandra:\n    hosts: [c1]\nlimits:\n  max_key_bytes: 65536\n",
			wantErr: "limits.max_key_bytes 65536: store.kind cassandra keeps keys of at most 65535 bytes"},
		{name: "cassandra key as long as its partition keys", yaml: "store:\n  kind: cassandra\n  cassandra:\n    hosts: [c1]\nlimits:\n  max_key_bytes: 65535\n",
			check: func(t *testing.T, c Config) {}},
		{name: "postgres key longer than mysql's", yaml: "store:\n  kind: postgres\n  dsn: postgres://h/d\nlimits:\n  max_key_bytes: 65536\n",
			check: func(t *testing.T, c Config) {}},
		{name: "schema registry", yaml: "schema_registry:\n  enabled: false\n  max_schema_bytes: 65536\n", check: func(t *testing.T, c Config) {
			if c.SchemaRegistry.Enabled || c.SchemaRegistry.MaxSchemaBytes != 64<<10 || c.SchemaRegistry.MaxDocumentBytes != 8<<20 {
				t.Fatalf("%+v", c.SchemaRegistry)
			}
		}},
		{name: "schema larger than a request", yaml: "schema_registry:\n  max_schema_bytes: 1048576\n",
			wantErr: "schema_registry.max_schema_bytes 1048576 out of range 1024..491520 (twice it plus 64 KiB must fit api.max_admin_request_bytes 1048576)"},
		{name: "schema registry document below a schema", yaml: "schema_registry:\n  max_document_bytes: 1000\n",
			wantErr: "schema_registry.max_document_bytes 1000 out of range 262144 (max_schema_bytes)"},
		{name: "schema registry references", yaml: "schema_registry:\n  max_references: 0\n", wantErr: "schema_registry.max_references 0 out of range 1..4096"},
		{name: "schema registry compiles", yaml: "schema_registry:\n  max_compiles: 0\n", wantErr: "schema_registry.max_compiles 0 out of range 1..1024"},
		{name: "schema registry compile timeout", yaml: "schema_registry:\n  compile_timeout: 10ms\n", wantErr: "schema_registry.compile_timeout 10ms out of range 100ms..10m"},
		{name: "write stream in flight", yaml: "api:\n  write_stream_in_flight: 7\n", wantErr: "api.write_stream_in_flight 7 out of range 8..1024"},
		{name: "group commit refresh too short", yaml: "api:\n  group_commit_refresh: 30s\n", wantErr: "api.group_commit_refresh 30s out of range 1m..24h"},
		{name: "group commit refresh too long", yaml: "api:\n  group_commit_refresh: 48h\n", wantErr: "api.group_commit_refresh 48h0m0s out of range 1m..24h"},
		{name: "connections per client", yaml: "api:\n  max_connections_per_client: 0\n",
			wantErr: "api.max_connections_per_client 0 out of range 1..1000000 (above api.max_connections it counts as api.max_connections)"},
		{name: "receive window", yaml: "api:\n  receive_window_bytes: 65535\n", wantErr: "api.receive_window_bytes 65535 out of range 65536..67108864"},
		{name: "log open file budget", yaml: "log:\n  max_open_files: 512\n", check: func(t *testing.T, c Config) {
			if c.Log.MaxOpenFiles != 512 || Default().Log.MaxOpenFiles != 0 {
				t.Fatalf("max_open_files %d, default %d", c.Log.MaxOpenFiles, Default().Log.MaxOpenFiles)
			}
		}},
		{name: "negative open file budget", yaml: "log:\n  max_open_files: -1\n", wantErr: "log.max_open_files -1 must not be negative"},
		{name: "negative version cache", yaml: "store:\n  version_cache_keys: -1\n", wantErr: "store.version_cache_keys -1 must not be negative"},
		{name: "negative row cache", yaml: "store:\n  row_cache_bytes: -1\n", wantErr: "store.row_cache_bytes -1 must not be negative"},
		{name: "replica wait", yaml: "store:\n  replica_wait: 0s\n", check: func(t *testing.T, c Config) {
			if c.Store.ReplicaWait != 0 || Default().Store.ReplicaWait != 50*time.Millisecond {
				t.Errorf("replica_wait %s (default %s), want 0s (default 50ms)", c.Store.ReplicaWait, Default().Store.ReplicaWait)
			}
		}},
		{name: "transaction linger", yaml: "resolver:\n  transaction_linger: 2s\n", wantErr: "resolver.transaction_linger 2s out of range 0s..1s"},
		{name: "negative replica wait", yaml: "store:\n  replica_wait: -1ms\n", wantErr: "store.replica_wait -1ms must be at least 0s and below store.query_timeout"},
		{name: "replica breaker off", yaml: "store:\n  replica_breaker_failures: 0\n", check: func(t *testing.T, c Config) {
			if c.Store.ReplicaBreakerFailures != 0 || Default().Store.ReplicaBreakerFailures != 3 {
				t.Errorf("replica_breaker_failures %d (default %d), want 0 (default 3)", c.Store.ReplicaBreakerFailures, Default().Store.ReplicaBreakerFailures)
			}
		}},
		{name: "negative replica breaker failures", yaml: "store:\n  replica_breaker_failures: -1\n", wantErr: "store.replica_breaker_failures -1 must be at least 0"},
		{name: "replica breaker backoff over its max", yaml: "store:\n  replica_breaker_backoff: 1m\n", wantErr: "store.replica_breaker_backoff 1m0s must be at least 0s (0s: 1s) and at most store.replica_breaker_max_backoff 30s"},
		{name: "negative replica breaker backoff", yaml: "store:\n  replica_breaker_backoff: -1s\n", wantErr: "store.replica_breaker_backoff -1s must be at least 0s"},
		{name: "replica wait over the query timeout", yaml: "store:\n  replica_wait: 5s\n", wantErr: "store.replica_wait 5s must be at least 0s and below store.query_timeout"},
		{name: "log sync rounds", yaml: "log:\n  sync_filesystem: true\n", check: func(t *testing.T, c Config) {
			if !c.Log.SyncFilesystem || Default().Log.SyncFilesystem {
				t.Fatalf("sync_filesystem %v, default %v", c.Log.SyncFilesystem, Default().Log.SyncFilesystem)
			}
		}},
		{name: "bad duration", yaml: "resolver:\n  backoff_min: soon\n", wantErr: "soon"},
		{name: "proxy id out of range", yaml: "proxy_id: 5000\n", wantErr: "proxy_id 5000 out of range 0..1023"},
		{name: "max merge bytes", yaml: "proxy:\n  max_merge_bytes: 1000\n", wantErr: "proxy.max_merge_bytes 1000 out of range 1048576..536870912"},
		{name: "unsupported store", yaml: "store:\n  kind: oracle\n", wantErr: `store.kind "oracle" is not supported`},
		{name: "postgres needs a dsn", yaml: "store:\n  kind: postgres\n", wantErr: "store.dsn is required for store.kind postgres"},
		{name: "dsn on pebble", yaml: "store:\n  dsn: postgres://x\n", wantErr: "store.dsn and store.replica_dsns need store.kind postgres or mysql"},
		{name: "postgres with replicas", yaml: "store:\n  kind: postgres\n  dsn: postgres://p\n  replica_dsns: [postgres://r1, postgres://r2]\n", check: func(t *testing.T, c Config) {
			if c.Store.Kind != StorePostgres || len(c.Store.ReplicaDSNs) != 2 || c.Store.MaxConns != 16 {
				t.Fatalf("%+v", c.Store)
			}
		}},
		{name: "bad failure mode", yaml: "tables:\n  - name: t\n    failure_mode: yolo\n", wantErr: `tables[0] (t): invalid table definition: failure mode "yolo"`},
		{name: "table without a name", yaml: "tables:\n  - partitions: 2\n", wantErr: "tables[0].name must not be empty"},
		{name: "backoff order", yaml: "resolver:\n  backoff_min: 1s\n  backoff_max: 1ms\n", wantErr: "backoff_min must be positive and <= backoff_max"},
		{name: "kafka needs brokers", yaml: "log:\n  kind: kafka\n", wantErr: "log.kafka.brokers is required"},
		{name: "bad sasl", yaml: "log:\n  kind: kafka\n  kafka:\n    brokers: [b:9092]\n    sasl:\n      mechanism: GSSAPI\n", wantErr: `log.kafka.sasl.mechanism "GSSAPI"`},
		{name: "kafka", yaml: "log:\n  kind: kafka\n  kafka:\n    brokers: [b1:9092, b2:9092]\n    sasl:\n      mechanism: SCRAM-SHA-512\n      user: u\n      password: p\n", check: func(t *testing.T, c Config) {
			if c.Log.Kind != LogKafka || len(c.Log.Kafka.Brokers) != 2 || c.Log.Kafka.SASL.Password != "p" {
				t.Fatalf("%+v", c.Log)
			}
		}},
		{name: "not yaml", yaml: "{{{", wantErr: "wail.yaml"},
		{name: "retry bounds", yaml: "table_defaults:\n  max_attempts: 5\ntables:\n  - name: t\n    max_retry_time: 30s\n" +
			"resolver:\n  retry_backoff_min: 50ms\n  retry_backoff_max: 2s\n  stall_after: 5m\n", check: func(t *testing.T, c Config) {
			if c.Defaults.MaxAttempts != 5 || c.Defaults.MaxRetryTime != time.Minute || c.Tables[0].MaxRetryTime != 30*time.Second ||
				c.Resolver.RetryBackoffMin != 50*time.Millisecond || c.Resolver.RetryBackoffMax != 2*time.Second || c.Resolver.StallAfter != 5*time.Minute {
				t.Fatalf("%+v %+v %+v", c.Defaults, c.Tables, c.Resolver)
			}
		}},
		{name: "max attempts range", yaml: "tables:\n  - name: t\n    max_attempts: -1\n", wantErr: "tables[0] (t): invalid table definition: max_attempts -1 out of range 1..1000000"},
		{name: "max retry time range", yaml: "table_defaults:\n  max_retry_time: 10ms\n", wantErr: "table_defaults: invalid table definition: max_retry_time 10ms out of range 1s..168h"},
		{name: "retry backoff order", yaml: "resolver:\n  retry_backoff_min: 1s\n  retry_backoff_max: 1ms\n", wantErr: "retry_backoff_min must be positive and <= retry_backoff_max"},
		{name: "stall after", yaml: "resolver:\n  stall_after: 10ms\n", wantErr: "resolver.stall_after must be at least 1s"},
		{name: "recheck default", yaml: "", check: func(t *testing.T, c Config) {
			if c.Resolver.Recheck != 1 {
				t.Fatalf("resolver.recheck %g, want 1", c.Resolver.Recheck)
			}
		}},
		{name: "recheck off", yaml: "resolver:\n  recheck: 0\n", check: func(t *testing.T, c Config) {
			if c.Resolver.Recheck != 0 {
				t.Fatalf("resolver.recheck %g, want 0", c.Resolver.Recheck)
			}
		}},
		{name: "recheck range", yaml: "resolver:\n  recheck: 11\n", wantErr: "resolver.recheck 11 out of range 0..10 (visibility windows)"},
		{name: "recheck negative", yaml: "resolver:\n  recheck: -1\n", wantErr: "resolver.recheck -1 out of range"},
		{name: "dlq retention", yaml: "log:\n  dlq_retention: -1s\n", wantErr: "log retention must not be negative"},
		{name: "dlq topic", yaml: "log:\n  kind: kafka\n  kafka:\n    brokers: [b:9092]\n    dlq_topic: wail.events.{table}\n", wantErr: "dlq_topic"},
		{name: "kafka message bytes low", yaml: "log:\n  kind: kafka\n  kafka:\n    brokers: [b:9092]\n    max_message_bytes: 1000\n", wantErr: "log.kafka.max_message_bytes 1000 out of range 131072..1073741824"},
		{name: "kafka message bytes high", yaml: "log:\n  kind: kafka\n  kafka:\n    brokers: [b:9092]\n    max_message_bytes: 2000000000\n", wantErr: "log.kafka.max_message_bytes 2000000000 out of range"},
		{name: "dlq topic default", yaml: "", check: func(t *testing.T, c Config) {
			if c.Log.Kafka.DLQTopic != "wail.dlq.{table}" || c.Log.DLQRetention != 0 {
				t.Fatalf("%+v", c.Log)
			}
		}},
		// Table settings are checked by the API's validator: a default
		// that every create would then refuse does not load.
		{name: "default window below the minimum", yaml: "table_defaults:\n  visibility_window: 1ms\n",
			wantErr: "table_defaults: invalid table definition: visibility_window 1ms out of range 10ms..24h"},
		{name: "default partitions over the budget", yaml: "limits:\n  max_table_partitions: 4\ntable_defaults:\n  partitions: 8\n",
			wantErr: "partitions 8 out of range 1..4 (limits.max_table_partitions)"},
		{name: "default retry bounds", yaml: "table_defaults:\n  max_attempts: 0\n  max_retry_time: 10ms\n",
			wantErr: "max_attempts 0 out of range"},
		{name: "table window", yaml: "tables:\n  - name: t\n    visibility_window: 1ms\n", wantErr: "tables[0] (t): invalid table definition: visibility_window 1ms"},
		{name: "table name", yaml: "tables:\n  - name: Bad-Name\n", wantErr: `tables[0] (Bad-Name): invalid table definition: invalid table name "Bad-Name"`},
		{name: "table named twice", yaml: "tables:\n  - name: t\n  - name: t\n", wantErr: "tables[1]: table t is listed twice"},
		{name: "budgets", yaml: "limits:\n  max_table_partitions: 16\n  max_partitions: 8\n", wantErr: "limits.max_partitions 8 is below limits.max_table_partitions 16"},
		{name: "per-table keys", yaml: "tables:\n  - name: t\n    failure_mode: independent\n    visibility_window: 3s\n    partitions: 2\n    max_attempts: 5\n    max_retry_time: 1m\n",
			check: func(t *testing.T, c Config) {
				def, err := c.TableDef(c.Tables[0])
				if err != nil || def.MaxAttempts != 5 || def.MaxRetryTime != time.Minute || def.Partitions != 2 {
					t.Fatalf("%+v %v", def, err)
				}
			}},
		{name: "tracing off by default", yaml: "", check: func(t *testing.T, c Config) {
			if c.Tracing.Enabled || c.Tracing.SampleRatio != 0.01 {
				t.Fatalf("%+v", c.Tracing)
			}
		}},
		{name: "tracing on", yaml: "tracing:\n  enabled: true\n  endpoint: https://otel:4318/v1/traces\n  sample_ratio: 1\n",
			check: func(t *testing.T, c Config) {
				if !c.Tracing.Enabled || c.Tracing.Endpoint != "https://otel:4318/v1/traces" || c.Tracing.SampleRatio != 1 || c.Tracing.ServiceName != "wail" {
					t.Fatalf("%+v", c.Tracing)
				}
			}},
		{name: "tracing sample ratio", yaml: "tracing:\n  sample_ratio: 1.5\n", wantErr: "tracing.sample_ratio 1.5 out of range 0..1"},
		{name: "tracing endpoint", yaml: "tracing:\n  enabled: true\n  endpoint: otel:4318\n", wantErr: `tracing.endpoint "otel:4318" is not an http(s) URL`},
		{name: "tracing service name", yaml: "tracing:\n  enabled: true\n  service_name: ''\n", wantErr: "tracing.service_name is empty"},
		{name: "console limits", yaml: "console:\n  max_tails: 0\n  history_records: 0\n",
			wantErr: "console.max_tails 0 out of range 1..1024\nconsole.history_records 0 out of range"},
		{name: "memory defaults", yaml: "", check: func(t *testing.T, c Config) {
			if c.Memory != (Memory{GCPercent: 300}) {
				t.Fatalf("%+v", c.Memory)
			}
		}},
		{name: "memory", yaml: "memory:\n  gc_percent: 100\n  limit_bytes: 1073741824\n", check: func(t *testing.T, c Config) {
			if c.Memory != (Memory{GCPercent: 100, LimitBytes: 1 << 30}) {
				t.Fatalf("%+v", c.Memory)
			}
		}},
		{name: "memory limit none", yaml: "memory:\n  limit_bytes: -1\n", check: func(t *testing.T, c Config) {
			if c.Memory.LimitBytes != -1 {
				t.Fatalf("%+v", c.Memory)
			}
		}},
		{name: "gc percent low", yaml: "memory:\n  gc_percent: 24\n", wantErr: "memory.gc_percent 24 out of range 25..10000"},
		{name: "gc percent high", yaml: "memory:\n  gc_percent: 10001\n", wantErr: "memory.gc_percent 10001 out of range 25..10000"},
		{name: "memory limit negative", yaml: "memory:\n  limit_bytes: -2\n", wantErr: "memory.limit_bytes -2: want -1 (none), 0 (from the cgroup) or at least 67108864 (64 MiB)"},
		{name: "memory limit tiny", yaml: "memory:\n  limit_bytes: 67108863\n", wantErr: "memory.limit_bytes 67108863: want"},
		// Events must outlive the intents they resolve: a replayed intent
		// whose key's events expired would publish its version again.
		{name: "event retention below intent retention", yaml: "log:\n  retention: 168h\n  event_retention: 24h\n",
			wantErr: "log.event_retention 24h0m0s is shorter than log.retention 168h0m0s"},
		{name: "finite event retention, intents forever", yaml: "log:\n  retention: 0s\n  event_retention: 720h\n",
			wantErr: "log.event_retention 720h0m0s is shorter than log.retention 0s (intents kept forever)"},
		{name: "event retention equal to intent retention", yaml: "log:\n  retention: 24h\n  event_retention: 24h\n", check: func(t *testing.T, c Config) {
			if c.Log.EventRetention != 24*time.Hour {
				t.Fatalf("%+v", c.Log)
			}
		}},
		{name: "event retention longer than intent retention", yaml: "log:\n  retention: 24h\n  event_retention: 720h\n", check: func(t *testing.T, c Config) {
			if c.Log.EventRetention != 720*time.Hour {
				t.Fatalf("%+v", c.Log)
			}
		}},
		{name: "events forever, intents bounded", yaml: "log:\n  retention: 24h\n  event_retention: 0s\n", check: func(t *testing.T, c Config) {
			if c.Log.EventRetention != 0 {
				t.Fatalf("%+v", c.Log)
			}
		}},
		{name: "durations need a unit", yaml: "log:\n  event_retention: 0\n",
			wantErr: "line 2: log.event_retention: 0 is not a duration: durations need a unit: 0s, 500ms, 10s, 2m, 168h, and are at most 2562047h"},
		// A value of the wrong type was named by Go type only ("cannot
		// unmarshal !!str `abc` into int"), not by key.
		{name: "a number given text", yaml: "store:\n  max_conns: abc\n", wantErr: "line 2: store.max_conns: \"abc\" is not a whole number"},
		{name: "a number given a fraction", yaml: "tables:\n  - name: orders\n    partitions: 4.5\n", wantErr: "line 3: tables[0].partitions: 4.5 is not a whole number"},
		{name: "a number too large", yaml: "limits:\n  max_key_bytes: 99999999999999999999\n", wantErr: "line 2: limits.max_key_bytes: 99999999999999999999 is out of range"},
		{name: "a switch given text", yaml: "resolver:\n  enabled: maybe\n", wantErr: "line 2: resolver.enabled: \"maybe\" is not true or false"},
		{name: "a fraction given text", yaml: "resolver:\n  recheck: twice\n", wantErr: "line 2: resolver.recheck: \"twice\" is not a number"},
		{name: "a duration given text", yaml: "proxy:\n  lease_ttl: soon\n", wantErr: "line 2: proxy.lease_ttl: \"soon\" is not a duration"},
		{name: "wrong types all named", yaml: "store:\n  max_conns: abc\nproxy:\n  lease_ttl: 15\n",
			wantErr: "line 2: store.max_conns: \"abc\" is not a whole number\nline 4: proxy.lease_ttl: 15 is not a duration"},
		// Bytes that are not UTF-8 were "yaml: invalid leading UTF-8
		// octet", without a line.
		{name: "not UTF-8", yaml: "store:\n  max_conns: 4\n  kind: \"po\xffstgres\"\n", wantErr: "line 3, column 12: byte 0xff is not UTF-8 text: save the file as UTF-8"},
		{name: "a key through an alias", yaml: "x_defaults: &d abc\nstore:\n  max_conns: *d\n", wantErr: "unknown key x_defaults"},
		{name: "durations too long", yaml: "shutdown_timeout: 99999999999h\n", wantErr: "and are at most 2562047h"},
		// A second document was ignored: its settings silently kept their
		// defaults.
		{name: "two documents", yaml: "listen: 127.0.0.1:1\n---\nshutdown_timeout: 5s\n", wantErr: "line 3: a second YAML document (---): put every setting in one document"},
		{name: "one document after ---", yaml: "---\nlisten: 127.0.0.1:1\n", check: func(t *testing.T, c Config) {
			if c.Listen != "127.0.0.1:1" {
				t.Fatal(c.Listen)
			}
		}},
		// A listen address without a port was refused as reachable from
		// other hosts, "or listen on 127.0.0.1" (which it was).
		{name: "listen needs a port", yaml: "listen: 127.0.0.1\n", wantErr: `listen "127.0.0.1": address 127.0.0.1: missing port in address`},
		// A pool size past int32 was cut to one (2147483648 counted as
		// 0: the default 16), and a resolver.concurrency of a typo's extra
		// zeros started that many goroutines at once.
		{name: "store.max_conns past its range", yaml: "store:\n  max_conns: 2147483648\n", wantErr: "store.max_conns 2147483648 out of range 1..10000"},
		{name: "resolver.concurrency past its range", yaml: "resolver:\n  concurrency: 100000000\n", wantErr: "resolver.concurrency 100000000 out of range 1..10000"},
		{name: "resolver.concurrency zero", yaml: "resolver:\n  concurrency: 0\n", wantErr: "resolver.concurrency 0 out of range 1..10000"},
		// A port past 65535 (a digit too many) loaded, and the server
		// then failed at its start with "invalid port".
		{name: "listen port out of range", yaml: "listen: 127.0.0.1:70700\n", wantErr: `listen "127.0.0.1:70700": port 70700 out of range 0..65535`},
		{name: "listen port negative", yaml: "listen: 127.0.0.1:-1\n", wantErr: `listen "127.0.0.1:-1": port -1 out of range 0..65535`},
		{name: "metrics_listen port out of range", yaml: "security:\n  metrics_listen: 127.0.0.1:99999\n", wantErr: `security.metrics_listen "127.0.0.1:99999": port 99999 out of range 0..65535`},
		{name: "listen on any port", yaml: "listen: 127.0.0.1:0\n", check: func(t *testing.T, c Config) {}},
		// Brokers without log.kind kafka loaded, and the process ran the
		// embedded log in data_dir: its events never reached Kafka.
		{name: "brokers without kafka", yaml: "log:\n  kafka:\n    brokers: [b:9092]\n", wantErr: "log.kafka.brokers needs log.kind kafka (log.kind is embedded: the log would stay in data_dir)"},
		// A value limit above what the Kafka log takes loaded: writes of
		// values the API accepted were then refused by the log.
		{name: "values larger than kafka takes", yaml: "log:\n  kind: kafka\n  kafka:\n    brokers: [b:9092]\nlimits:\n  max_value_bytes: 8388608\n",
			wantErr: "limits.max_key_bytes 4096 + limits.max_value_bytes 8388608 do not fit log.kafka.max_message_bytes 4194304"},
		{name: "values that kafka takes", yaml: "log:\n  kind: kafka\n  kafka:\n    brokers: [b:9092]\n    max_message_bytes: 16777216\nlimits:\n  max_value_bytes: 8388608\n",
			check: func(t *testing.T, c Config) {}},
		// A path starting with ~ loaded: nothing expands it, so the data
		// went to a directory named "~" below the working directory, and a
		// file was looked for there.
		{name: "data_dir with ~", yaml: "data_dir: ~/wail\n", wantErr: `data_dir "~/wail": nothing expands ~ here: give the path in full (/home/...)`},
		{name: "a file with ~", yaml: "security:\n  tls:\n    cert_file: ~/tls/server.pem\n    key_file: /etc/wail/key.pem\n",
			wantErr: `security.tls.cert_file "~/tls/server.pem": nothing expands ~ here`},
		{name: "an empty document after the settings", yaml: "listen: 127.0.0.1:1\n---\n", check: func(t *testing.T, c Config) {
			if c.Listen != "127.0.0.1:1" {
				t.Fatal(c.Listen)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := Load(write(t, tc.yaml))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

func TestMissingFile(t *testing.T) {
	t.Parallel()
	if _, err := Load(filepath.Join(t.TempDir(), "nope.yaml")); err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("err = %v", err)
	}
}

// TestEndlessFile: a configuration file is read up to a bound: --config
// /dev/zero (or a FIFO that keeps writing) grew until memory ran out.
func TestEndlessFile(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip(err)
	}
	if _, err := Load("/dev/zero"); err == nil || !strings.Contains(err.Error(), "config /dev/zero: larger than 16 MiB") {
		t.Fatalf("err = %v", err)
	}
}

func TestResolverInstance(t *testing.T) {
	t.Parallel()
	host, _ := os.Hostname()
	cases := []struct{ id, listen, want string }{
		{"given", "127.0.0.1:7070", "given"},
		{"", "127.0.0.1:7070", host + "-7070"},
		{"", "127.0.0.1:0", host},
	}
	for _, c := range cases {
		cfg := Default()
		cfg.Resolver.InstanceID, cfg.Listen = c.id, c.listen
		if got := cfg.ResolverInstance(); got != c.want {
			t.Errorf("ResolverInstance(%q, %q) = %q, want %q", c.id, c.listen, got, c.want)
		}
	}
}

// TestAliasBomb: a file of aliases of aliases (merge keys ten wide, twelve
// deep) loads, or is refused, at once: the check of the keys walks each
// anchored node once, instead of 10^12 times.
func TestAliasBomb(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("tables:\n  - &a0 {name: t0}\n")
	for i := 1; i <= 12; i++ {
		refs := make([]string, 10)
		for j := range refs {
			refs[j] = fmt.Sprintf("*a%d", i-1)
		}
		fmt.Fprintf(&b, "  - &a%d {<<: [%s]}\n", i, strings.Join(refs, ", "))
	}
	done := make(chan error, 1)
	go func() {
		_, err := Load(write(t, b.String()))
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a file of excessive aliasing loaded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Load still runs after 10s")
	}
}
