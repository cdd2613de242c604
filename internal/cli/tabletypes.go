package cli

import (
	"context"
	"fmt"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/sr"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/schema"
)

// typeFlags are the typed-table flags of table create and alter: a .proto
// file (with --*-ref imports) and the message type, for keys and values.
type typeFlags struct {
	keyProto, valueProto     string
	keyMessage, valueMessage string
	keyRefs, valueRefs       []string
	validate                 bool
}

func (f *typeFlags) register(cmd *cobra.Command, create bool) {
	fl := cmd.Flags()
	verb := "makes a typed table: its schema is registered under the subject <event topic>-"
	if !create {
		verb = "registers a new version of the typed table's schema (checked by the subject's compatibility level) under <event topic>-"
	}
	fl.StringVar(&f.keyProto, "key-proto", "", "the .proto file of the keys' message type; "+verb+"key")
	fl.StringVar(&f.valueProto, "value-proto", "", "the .proto file of the values' message type; "+verb+"value")
	fl.StringVar(&f.keyMessage, "key-message", "", "the keys' message type in --key-proto (full name, or the name alone when unique)")
	fl.StringVar(&f.valueMessage, "value-message", "", "the values' message type in --value-proto (full name, or the name alone when unique)")
	fl.StringArrayVar(&f.keyRefs, "key-ref", nil, "an import of --key-proto: PATH=SUBJECT:VERSION (a registered schema; VERSION may be latest); repeatable")
	fl.StringArrayVar(&f.valueRefs, "value-ref", nil, "an import of --value-proto: PATH=SUBJECT:VERSION (a registered schema; VERSION may be latest); repeatable")
	fl.BoolVar(&f.validate, "validate", true, "check the writes of a typed table against its schemas (JSON values are converted either way)")
}

// schemas reads the flags' .proto files into the API's TypeSchemas (nil
// when not given).
func (f *typeFlags) schemas() (key, value *wailv1.TypeSchema, err error) {
	if key, err = typeSchema("key", f.keyProto, f.keyMessage, f.keyRefs); err != nil {
		return nil, nil, err
	}
	if value, err = typeSchema("value", f.valueProto, f.valueMessage, f.valueRefs); err != nil {
		return nil, nil, err
	}
	return key, value, nil
}

func typeSchema(part, file, message string, refs []string) (*wailv1.TypeSchema, error) {
	if file == "" {
		if message != "" || len(refs) > 0 {
			return nil, usageErrorf("--%s-message and --%s-ref need --%s-proto", part, part, part)
		}
		return nil, nil
	}
	rs, err := parseRefs(refs)
	if err != nil {
		return nil, err
	}
	b, err := readProto(file)
	if err != nil {
		return nil, usageErrorf("--%s-proto: %w", part, err)
	}
	ts := &wailv1.TypeSchema{Schema: string(b), Message: message}
	for _, r := range rs {
		ts.References = append(ts.References, &wailv1.SchemaReference{Name: r.Name, Subject: r.Subject, Version: int32(r.Version)})
	}
	return ts, nil
}

// typesOf describes a typed table's message types, for describe (empty
// for an untyped table).
func typesOf(t *wailv1.Table) string {
	if t.GetKeyMessage() == "" && t.GetValueMessage() == "" {
		return ""
	}
	or := func(m string) string {
		if m == "" {
			return "bytes"
		}
		return m
	}
	validation := "on"
	if t.GetSkipValidation() {
		validation = "off"
	}
	return fmt.Sprintf(", key %s, value %s, validation %s", or(t.GetKeyMessage()), or(t.GetValueMessage()), validation)
}

// valuePrinter prints a typed table's values as Protobuf JSON with the
// latest schema of its value subject, fetched from the registry; a value
// with fields that schema lacks (written under a newer version) fetches
// it again, at most once a second.
type valuePrinter struct {
	cmd              *cobra.Command
	g                *globals
	subject, message string
	msg              schema.Message
	loaded           time.Time
}

func newValuePrinter(cmd *cobra.Command, g *globals, cl *clients, table string) (*valuePrinter, error) {
	ctx, cancel := g.unary(cmd.Context())
	defer cancel()
	resp, err := cl.admin.DescribeTable(ctx, connect.NewRequest(&wailv1.DescribeTableRequest{Name: table}))
	if err != nil {
		return nil, err
	}
	t := resp.Msg.GetTable()
	if t.GetValueMessage() == "" {
		return nil, usageErrorf("table %s is not typed: its values have no JSON form (leave out --value-json)", table)
	}
	p := &valuePrinter{cmd: cmd, g: g, subject: t.GetValueSubject(), message: t.GetValueMessage()}
	if err := p.load(); err != nil {
		return nil, err
	}
	return p, nil
}

// load fetches the subject's latest schema.
func (p *valuePrinter) load() error {
	p.loaded = time.Now()
	return registryCall(p.cmd, p.g, func(ctx context.Context, cl *sr.Client) error {
		s, err := loadSchema(ctx, cl, p.subject, "latest", nil)
		if err != nil {
			return err
		}
		msg, err := s.MessageType(p.message)
		if err != nil {
			return err
		}
		p.msg = msg
		return nil
	})
}

// print renders a value: JSON, or its bytes with the reason when it does
// not decode.
func (p *valuePrinter) print(b []byte) string {
	if p.msg.Validate(b) != nil && time.Since(p.loaded) > time.Second {
		_ = p.load() // a newer version may know the value's fields; else print with what we have
	}
	j, err := p.msg.Print(b)
	if err != nil {
		return displayBytes(b, tailValueLimit) + " (" + err.Error() + ")"
	}
	return string(j)
}
