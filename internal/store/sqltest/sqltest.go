// Package sqltest holds what the tests of the SQL stores (postgres, mysql)
// share: finding the test database, or skipping when there is none, and
// the suite both pass besides storetest's (Run, suite.go).
package sqltest

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/servicetest"
)

// DSN returns the DSN in the environment variable env. When it is unset it
// returns def if addr (def's host:port) accepts a TCP connection, and
// otherwise skips the test, telling how to start the service; under CI
// (CI=true) it fails instead, since CI must not skip these tests.
func DSN(t testing.TB, env, def, addr, service string) string {
	t.Helper()
	if dsn := os.Getenv(env); dsn != "" {
		return dsn
	}
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		_ = conn.Close()
		return def
	}
	msg := service + " not reachable: run scripts/services.sh up (" + env + " unset, " + addr + ": " + err.Error() + ")"
	servicetest.Missing(t, msg)
	return ""
}

// Name returns prefix followed by 12 random lower-case hex digits: a
// schema or database name no other test run uses.
func Name(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// ClosedAddr returns a 127.0.0.1 address nothing listens on (it was
// listening a moment ago, so the port is free and connections are refused).
func ClosedAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// SilentAddr returns the address of a listener that accepts connections and
// never answers: a server that hangs, for timeout tests. It is closed when
// the test ends.
func SilentAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				_ = c.Close()
			}
			close(done)
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		<-done
	})
	return l.Addr().String()
}
