package mysql

import (
	"testing"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/storetest"
)

func openBench(b *testing.B) store.Store {
	return openFresh(b, 0, func(o *Options) { o.MaxConns = 16 })
}

func BenchmarkApply(b *testing.B) { storetest.BenchApply(b, openBench) }

func BenchmarkGet(b *testing.B) { storetest.BenchGet(b, openBench) }

func BenchmarkGetMany(b *testing.B) { storetest.BenchGetMany(b, openBench) }

func BenchmarkApplyDoc(b *testing.B) { storetest.BenchApplyDoc(b, openBench) }
