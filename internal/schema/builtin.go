package schema

import (
	"embed"
	"io"
	"os"

	"github.com/bufbuild/protocompile"
	"google.golang.org/genproto/googleapis/type/calendarperiod"
	"google.golang.org/genproto/googleapis/type/color"
	"google.golang.org/genproto/googleapis/type/date"
	"google.golang.org/genproto/googleapis/type/datetime"
	"google.golang.org/genproto/googleapis/type/dayofweek"
	"google.golang.org/genproto/googleapis/type/decimal"
	"google.golang.org/genproto/googleapis/type/expr"
	"google.golang.org/genproto/googleapis/type/fraction"
	"google.golang.org/genproto/googleapis/type/interval"
	"google.golang.org/genproto/googleapis/type/latlng"
	"google.golang.org/genproto/googleapis/type/money"
	"google.golang.org/genproto/googleapis/type/month"
	"google.golang.org/genproto/googleapis/type/phone_number"
	"google.golang.org/genproto/googleapis/type/postaladdress"
	"google.golang.org/genproto/googleapis/type/quaternion"
	"google.golang.org/genproto/googleapis/type/timeofday"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Confluent's built-in imports: the files the Confluent registry knows
// without a reference (its ProtobufSchema's known dependencies, the files
// confluent-kafka's clients skip when they register a schema's
// references): confluent/meta.proto, confluent/type/decimal.proto, the
// Google common types google/type/*.proto, and the Protobuf well-known
// types google/protobuf/*.proto (protocompile's standard imports). A
// reference of the same name takes precedence, as in Confluent's registry.

//go:embed builtin/confluent
var confluentFiles embed.FS

// googleTypes are the google/type files Confluent's registry knows, as
// compiled into genproto.
var googleTypes = func() map[string]protoreflect.FileDescriptor {
	m := map[string]protoreflect.FileDescriptor{}
	for _, fd := range []protoreflect.FileDescriptor{
		calendarperiod.File_google_type_calendar_period_proto,
		color.File_google_type_color_proto,
		date.File_google_type_date_proto,
		datetime.File_google_type_datetime_proto,
		dayofweek.File_google_type_dayofweek_proto,
		decimal.File_google_type_decimal_proto,
		expr.File_google_type_expr_proto,
		fraction.File_google_type_fraction_proto,
		interval.File_google_type_interval_proto,
		latlng.File_google_type_latlng_proto,
		money.File_google_type_money_proto,
		month.File_google_type_month_proto,
		phone_number.File_google_type_phone_number_proto,
		postaladdress.File_google_type_postal_address_proto,
		quaternion.File_google_type_quaternion_proto,
		timeofday.File_google_type_timeofday_proto,
	} {
		m[fd.Path()] = fd
	}
	return m
}()

// withBuiltins resolves Confluent's built-in imports after r: r first (a
// reference wins), then confluent/*, google/type/*, then the Protobuf
// standard imports.
func withBuiltins(r protocompile.Resolver) protocompile.Resolver {
	return protocompile.WithStandardImports(protocompile.ResolverFunc(func(path string) (protocompile.SearchResult, error) {
		res, err := r.FindFileByPath(path)
		if err == nil {
			return res, nil
		}
		if fd, ok := googleTypes[path]; ok {
			return protocompile.SearchResult{Desc: fd}, nil
		}
		if f, ferr := confluentFiles.Open("builtin/" + path); ferr == nil {
			return protocompile.SearchResult{Source: f.(io.Reader)}, nil
		}
		return res, err
	}))
}

// Builtin reports whether path is one of Confluent's built-in imports,
// which a schema imports without a reference.
func Builtin(path string) bool {
	_, err := builtins.FindFileByPath(path)
	return err == nil
}

var builtins = withBuiltins(protocompile.ResolverFunc(func(string) (protocompile.SearchResult, error) {
	return protocompile.SearchResult{}, os.ErrNotExist
}))
