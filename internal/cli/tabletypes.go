package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
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
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, usageErrorf("--%s-proto: %v", part, err)
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
