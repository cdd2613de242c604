package postgres

import (
	"context"
	"testing"

	"github.com/wail-cdc/wail/internal/store/sqltest"
)

func TestLeases(t *testing.T) {
	dsn, _ := freshDSNs(t, 0)
	open := func() *Store {
		s, err := Open(context.Background(), Options{DSN: dsn, MaxConns: 4, Logger: quiet})
		return sqltest.Closing(t, s, err)
	}
	sqltest.RunLeases(t, open(), open())
}
