package schema

import (
	"strings"
	"testing"
)

// TestCheckLevels: each level on the same histories, with the verdict and
// the breaking change its message must name.
func TestCheckLevels(t *testing.T) {
	const (
		v1 = `syntax = "proto3"; message M { int32 x = 1; message Sub { int32 s = 1; } }`
		// v2 drops x: compatible with v1 both ways.
		v2 = `syntax = "proto3"; message M { message Sub { int32 s = 1; } }`
		// x comes back as a string: fine after v2, not after v1.
		reuse = `syntax = "proto3"; message M { string x = 1; message Sub { int32 s = 1; } }`
		// drops the nested message: new readers miss it (backward), old
		// readers do not care (forward).
		dropSub = `syntax = "proto3"; message M { int32 dropped_sub = 2; }`
		// adds one: the mirror image.
		addMsg = `syntax = "proto3"; message M { message Sub { int32 s = 1; } message Extra { int32 e = 1; } }`
	)
	hist := []string{v1, v2}
	for _, tc := range []struct {
		candidate string
		level     Level
		want      string // "" compatible; else in the messages
	}{
		{reuse, None, ""},
		{reuse, Backward, ""},
		{reuse, Forward, ""},
		{reuse, Full, ""},
		{reuse, BackwardTransitive, `{errorType:"FIELD_SCALAR_KIND_CHANGED", description:"The kind of a SCALAR field at path '#/M/1' in the new schema does not match its kind in the old schema: field x (M.x): int32 → string"}`},
		{reuse, ForwardTransitive, `{errorType:"FIELD_SCALAR_KIND_CHANGED", description:"The kind of a SCALAR field at path '#/M/1' in the old schema does not match its kind in the new schema: field x (M.x): string → int32"}`},
		{reuse, FullTransitive, "FIELD_SCALAR_KIND_CHANGED"},
		{dropSub, None, ""},
		{dropSub, Backward, `{errorType:"MESSAGE_REMOVED", description:"The new schema is missing a MESSAGE type at path '#/M/Sub' in the old schema: message M.Sub removed"}`},
		{dropSub, Forward, ""},
		{dropSub, Full, "MESSAGE_REMOVED"},
		{dropSub, BackwardTransitive, "MESSAGE_REMOVED"},
		{dropSub, ForwardTransitive, ""},
		{dropSub, FullTransitive, "MESSAGE_REMOVED"},
		{addMsg, Backward, ""},
		{addMsg, BackwardTransitive, ""},
		{addMsg, Forward, `{errorType:"MESSAGE_REMOVED", description:"The old schema is missing a MESSAGE type at path '#/M/Extra' in the new schema: message M.Extra removed"}`},
		{addMsg, ForwardTransitive, "MESSAGE_REMOVED"},
		{addMsg, Full, "MESSAGE_REMOVED"},
		{addMsg, FullTransitive, "MESSAGE_REMOVED"},
		{addMsg, None, ""},
	} {
		t.Run(string(tc.level)+"/"+tc.candidate[len(`syntax = "proto3"; message M { `):][:12], func(t *testing.T) {
			var prev []Version
			for i, h := range hist {
				prev = append(prev, Version{Version: i + 1, Schema: mustCompile(t, h), Text: h})
			}
			msgs := Check(tc.level, mustCompile(t, tc.candidate), prev)
			if tc.want == "" {
				if len(msgs) != 0 {
					t.Fatalf("refused: %q", msgs)
				}
				return
			}
			if len(msgs) == 0 || !strings.Contains(strings.Join(msgs, "\n"), tc.want) {
				t.Fatalf("messages %q do not contain %q", msgs, tc.want)
			}
		})
	}
}

// TestCheckMessages: the full message list of a refusal, as the Confluent
// registry words it: the breaking changes, then the version and text of
// the schema they break.
func TestCheckMessages(t *testing.T) {
	const old = `syntax = "proto3"; message M { int32 x = 1; }`
	prev := []Version{{Version: 3, Schema: mustCompile(t, old), Text: old}}
	got := Check(Backward, mustCompile(t, `syntax = "proto3"; message M { Sub x = 1; message Sub {} }`), prev)
	want := []string{
		`{errorType:"FIELD_KIND_CHANGED", description:"The type of a field at path '#/M/1' in the new schema does not match the old schema: field x (M.x): int32 → M.Sub"}`,
		`{oldSchemaVersion: 3}`,
		`{oldSchema: '` + old + `'}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// FULL: the forward half quotes nothing, the backward half the schema.
	got = Check(Full, mustCompile(t, `syntax = "proto3"; message M { string x = 1; }`), prev)
	if len(got) != 4 || !strings.Contains(got[0], "in the old schema does not match its kind in the new") ||
		!strings.Contains(got[1], "in the new schema does not match its kind in the old") || got[2] != "{oldSchemaVersion: 3}" {
		t.Fatalf("FULL messages: %q", got)
	}

	// A huge old schema is quoted truncated.
	big := `syntax = "proto3"; message M { int32 x = 1; }` + "\n//" + strings.Repeat("x", 2*maxQuoted)
	prev = []Version{{Version: 1, Schema: mustCompile(t, big), Text: big}}
	got = Check(Backward, mustCompile(t, `syntax = "proto3"; message M { string x = 1; }`), prev)
	if last := got[len(got)-1]; !strings.HasPrefix(last, "{oldSchema: <truncated> '") || len(last) > maxQuoted+100 {
		t.Fatalf("quote of a huge schema: %d bytes, starts %q", len(last), last[:40])
	}
}

func TestParseLevel(t *testing.T) {
	for _, l := range Levels {
		got, err := ParseLevel(strings.ToLower(string(l)))
		if err != nil || got != l {
			t.Errorf("ParseLevel(%q) = %q, %v", l, got, err)
		}
	}
	if _, err := ParseLevel("SIDEWAYS"); err == nil || !strings.Contains(err.Error(), "BACKWARD_TRANSITIVE") {
		t.Errorf("ParseLevel(SIDEWAYS): %v", err)
	}
}

// TestCheckQuotes: which refusals quote the old schema. FULL's forward
// half quotes nothing (TestCheckMessages), even when it is the only half
// refused; FORWARD alone quotes it. A schema of exactly maxQuoted bytes is
// quoted whole.
func TestCheckQuotes(t *testing.T) {
	const old = `syntax = "proto3"; message M { int32 x = 1; }`
	// Adds a message: old readers lack it (forward), new ones do not care.
	const added = `syntax = "proto3"; message M { int32 x = 1; } message N {}`
	prev := []Version{{Version: 2, Schema: mustCompile(t, old), Text: old}}
	got := Check(Full, mustCompile(t, added), prev)
	if len(got) != 1 || !strings.Contains(got[0], "MESSAGE_REMOVED") {
		t.Errorf("FULL, forward break only: %q, want the break alone", got)
	}
	got = Check(Forward, mustCompile(t, added), prev)
	if len(got) != 3 || got[1] != "{oldSchemaVersion: 2}" {
		t.Errorf("FORWARD: %q, want the break and the quote", got)
	}
	exact := strings.Repeat("x", maxQuoted)
	prev[0].Text = exact
	got = Check(Backward, mustCompile(t, `syntax = "proto3"; message M { string x = 1; }`), prev)
	if len(got) == 0 || got[len(got)-1] != "{oldSchema: '"+exact+"'}" {
		t.Errorf("a schema of exactly maxQuoted bytes is not quoted whole")
	}
}
