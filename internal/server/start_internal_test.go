package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/store"
)

// TestWaitable: only errors that say a dependency cannot be reached yet
// make the start wait.
func TestWaitable(t *testing.T) {
	t.Parallel()
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("kafka: ping: %w", dial), true},
		{fmt.Errorf("postgres: open: %w", store.ErrUnavailable), true},
		{fmt.Errorf("attempt: %w", context.DeadlineExceeded), true},
		{fmt.Errorf("read: %w", io.EOF), true},
		{fmt.Errorf("kafka: %w", kerr.CoordinatorNotAvailable), true},
		{&os.PathError{Op: "mkdir", Path: "/x", Err: syscall.ENOTDIR}, false},
		{fmt.Errorf("server: table t: %w", catalog.ErrConflict), false},
		{fmt.Errorf("kafka: %w", kerr.SaslAuthenticationFailed), false},
		{errors.New("pebble: lock held"), false},
	} {
		if got := waitable(tc.err); got != tc.want {
			t.Errorf("waitable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestWaitingFor: the start names the dependency it waits for by the
// configuration key that sets it (docs/operations.md, Start), the
// Cassandra store's hosts included (it was named store.dsn).
func TestWaitingFor(t *testing.T) {
	t.Parallel()
	kafka := config.Log{Kind: config.LogKafka, Kafka: config.Kafka{Brokers: []string{"k1:9092", "k2:9092"}}}
	for _, tc := range []struct {
		log   config.Log
		store config.Store
		want  string
	}{
		{kafka, config.Store{Kind: config.StorePebble}, "the Kafka brokers k1:9092,k2:9092 (log.kafka.brokers)"},
		{config.Log{Kind: config.LogEmbedded}, config.Store{Kind: config.StorePostgres}, "the postgres store (store.dsn)"},
		{config.Log{Kind: config.LogEmbedded}, config.Store{Kind: config.StoreMySQL}, "the mysql store (store.dsn)"},
		{config.Log{Kind: config.LogEmbedded}, config.Store{Kind: config.StoreCassandra, Cassandra: config.Cassandra{Hosts: []string{"c1", "c2"}}},
			"the cassandra store c1,c2 (store.cassandra.hosts)"},
	} {
		s := &Server{cfg: config.Config{Log: tc.log, Store: tc.store}}
		if got := s.waitingFor(); got != tc.want {
			t.Errorf("waitingFor(%s, %s) = %q, want %q", tc.log.Kind, tc.store.Kind, got, tc.want)
		}
	}
}
