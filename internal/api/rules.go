package api

import (
	"slices"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/auth"
)

// rules map every procedure of the API to the permission it needs on the
// tables its request names (tablesOf). A procedure without a rule is
// refused (PermissionDenied) when auth is on, and TestEveryProcedureHasARule
// fails: add the rule with the RPC.
var rules = map[string]auth.Permission{
	wailv1connect.ProducerServicePutProcedure:    auth.Produce,
	wailv1connect.ProducerServiceDeleteProcedure: auth.Produce,
	wailv1connect.ProducerServiceWriteProcedure:  auth.Produce,
	// each batch of the stream, as it is read
	wailv1connect.ProducerServiceWriteStreamProcedure: auth.Produce,
	wailv1connect.ProducerServiceGetProcedure:         auth.Read,

	wailv1connect.AdminServiceCreateTableProcedure:        auth.Admin,
	wailv1connect.AdminServiceAlterTableProcedure:         auth.Admin,
	wailv1connect.AdminServiceDropTableProcedure:          auth.Admin,
	wailv1connect.AdminServiceReconcileTableProcedure:     auth.Admin,
	wailv1connect.AdminServiceListDeadLettersProcedure:    auth.Admin,
	wailv1connect.AdminServiceGetDeadLetterProcedure:      auth.Admin,
	wailv1connect.AdminServiceRedriveDeadLettersProcedure: auth.Admin,
	wailv1connect.AdminServiceDropDeadLettersProcedure:    auth.Admin,
	// A sink posts a table's events to a URL of its creator's choice from
	// the server's network: creating and changing one is admin's.
	wailv1connect.AdminServiceCreateSinkProcedure:    auth.Admin,
	wailv1connect.AdminServicePauseSinkProcedure:     auth.Admin,
	wailv1connect.AdminServiceResumeSinkProcedure:    auth.Admin,
	wailv1connect.AdminServiceDropSinkProcedure:      auth.Admin,
	wailv1connect.AdminServiceListSinksProcedure:     auth.Consume,
	wailv1connect.AdminServiceDescribeSinkProcedure:  auth.Consume,
	wailv1connect.AdminServiceDescribeTableProcedure: auth.Any, // any permission on the table
	wailv1connect.AdminServiceListTablesProcedure:    auth.Any, // lists the tables the principal has a grant on

	wailv1connect.EventServiceSubscribeProcedure:     auth.Consume,
	wailv1connect.EventServiceConsumeProcedure:       auth.Consume, // consumer groups
	wailv1connect.EventServiceAckProcedure:           auth.Consume,
	wailv1connect.EventServiceListGroupsProcedure:    auth.Consume,
	wailv1connect.EventServiceDescribeGroupProcedure: auth.Consume,
	wailv1connect.EventServiceResetGroupProcedure:    auth.Admin, // moves a group's positions
}

// Rule returns the permission procedure needs; ok is false when it has
// none (and is refused when auth is on).
func Rule(procedure string) (perm auth.Permission, ok bool) {
	perm, ok = rules[procedure]
	return perm, ok
}

// Methods are the methods of every service of package wail.v1 (in every
// file of it), from the service descriptors.
func Methods() []protoreflect.MethodDescriptor {
	_ = wailv1.File_wail_v1_wail_proto // registers the package's files
	var out []protoreflect.MethodDescriptor
	protoregistry.GlobalFiles.RangeFilesByPackage("wail.v1", func(f protoreflect.FileDescriptor) bool {
		for i := range f.Services().Len() {
			s := f.Services().Get(i)
			for j := range s.Methods().Len() {
				out = append(out, s.Methods().Get(j))
			}
		}
		return true
	})
	return out
}

// Procedure is a method's procedure: "/wail.v1.ProducerService/Put".
func Procedure(m protoreflect.MethodDescriptor) string {
	return "/" + string(m.Parent().FullName()) + "/" + string(m.Name())
}

// tablesOf returns the tables a request names: its "table" field (or
// "name", for the table requests of AdminService), and the "table" fields
// of the messages of its repeated fields (a Write batch's mutations), each
// once.
func tablesOf(m proto.Message) []string {
	var out []string
	add := func(t string) {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	var muts []*wailv1.Mutation
	switch w := m.(type) { // the hot ones, without reflection
	case *wailv1.WriteRequest:
		muts = w.GetMutations()
	case *wailv1.WriteStreamRequest:
		muts = w.GetMutations()
	}
	if muts != nil {
		for _, mu := range muts {
			add(mu.GetTable())
		}
		return out
	}
	r := m.ProtoReflect()
	fields := r.Descriptor().Fields()
	if f := tableField(r.Descriptor()); f != nil {
		add(r.Get(f).String())
	}
	for i := range fields.Len() {
		f := fields.Get(i)
		if !f.IsList() || f.Kind() != protoreflect.MessageKind {
			continue
		}
		tf := f.Message().Fields().ByName("table")
		if tf == nil || tf.Kind() != protoreflect.StringKind || tf.IsList() {
			continue
		}
		list := r.Get(f).List()
		for j := range list.Len() {
			add(list.Get(j).Message().Get(tf).String())
		}
	}
	return out
}

// tableField is a message's "table" string field, else its "name" one.
func tableField(md protoreflect.MessageDescriptor) protoreflect.FieldDescriptor {
	for _, name := range []protoreflect.Name{"table", "name"} {
		if f := md.Fields().ByName(name); f != nil && f.Kind() == protoreflect.StringKind && !f.IsList() {
			return f
		}
	}
	return nil
}
