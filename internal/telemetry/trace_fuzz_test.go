package telemetry

import "testing"

// FuzzParseTraceparent: a traceparent comes from a client's request or a
// record's header: whatever it is, reading it does not panic, and a
// sampled span context read writes back to a traceparent that reads the
// same.
func FuzzParseTraceparent(f *testing.F) {
	for _, s := range []string{
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-extra",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc, ok := ParseTraceparent(s)
		if !ok {
			return
		}
		if !sc.IsRemote() || !sc.IsValid() {
			t.Fatalf("%q read as %+v", s, sc)
		}
		tp := Traceparent(sc)
		if !sc.IsSampled() {
			if tp != "" {
				t.Fatalf("unsampled %q wrote %q", s, tp)
			}
			return
		}
		again, ok := ParseTraceparent(tp)
		if !ok || !again.Equal(sc) {
			t.Fatalf("%q -> %q -> %+v, %v; want %+v", s, tp, again, ok, sc)
		}
	})
}
