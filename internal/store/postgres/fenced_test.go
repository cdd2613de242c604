package postgres

import (
	"testing"

	"github.com/wail-cdc/wail/internal/store/sqltest"
)

func TestDropTableIf(t *testing.T) {
	t.Parallel()
	sqltest.FencedDrop(t, func(t *testing.T) *Store { return openFresh(t, false) })
}
