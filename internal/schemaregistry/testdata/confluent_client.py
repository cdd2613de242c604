"""Drives wail's schema registry with confluent-kafka's SchemaRegistryClient
(an independent client: PyPI confluent-kafka), as TestConfluentPythonClient
runs it: python3 confluent_client.py <registry url>. Exits non-zero, saying
which step failed, when the registry answers anything but what Confluent's
registry would."""

import base64
import sys

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2
from google.type import date_pb2

from confluent_kafka.schema_registry import Schema, SchemaReference, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

URL = sys.argv[1]

MONEY = 'syntax = "proto3";\npackage shop.money;\nmessage Money { int64 units = 1; string currency = 2; }\n'
ORDER = ('syntax = "proto3";\npackage shop;\nimport "shop/money.proto";\n'
         'message Order { string id = 1; shop.money.Money total = 2; }\n')
ORDER2 = ('syntax = "proto3";\npackage shop;\nimport "shop/money.proto";\n'
          'message Order { string id = 1; shop.money.Money total = 2; string note = 3; }\n')
BAD = ('syntax = "proto3";\npackage shop;\nimport "shop/money.proto";\n'
       'message Order { int64 id = 1; shop.money.Money total = 2; }\n')


def check(what, cond):
    if not cond:
        print("FAILED:", what, file=sys.stderr)
        sys.exit(1)
    print("ok:", what)


def refused(what, fn, code):
    try:
        fn()
    except SchemaRegistryError as e:
        check(f"{what} refused with {code} (got {e.error_code}: {e.error_message})", e.error_code == code)
        return e
    check(f"{what} refused", False)


def fresh():
    # Its own client, with empty caches, so every answer comes from wail.
    return SchemaRegistryClient({"url": URL})


sr = fresh()
check("schema types", "PROTOBUF" in sr.get_schema_types())
money_id = sr.register_schema("shop.money", Schema(MONEY, "PROTOBUF"))
ref = SchemaReference("shop/money.proto", "shop.money", 1)
order_id = sr.register_schema("orders-value", Schema(ORDER, "PROTOBUF", [ref]))
check("ids differ", money_id != order_id)
check("same schema, same id", fresh().register_schema("orders-value", Schema(ORDER, "PROTOBUF", [ref])) == order_id)

s = fresh().get_schema(order_id)
check("schema by id", s.schema_str == ORDER and s.schema_type == "PROTOBUF"
      and [(r.name, r.subject, r.version) for r in s.references] == [("shop/money.proto", "shop.money", 1)])
latest = fresh().get_latest_version("orders-value")
check("latest version", latest.schema_id == order_id and latest.version == 1 and latest.subject == "orders-value")
found = fresh().lookup_schema("orders-value", Schema(ORDER, "PROTOBUF", [ref]))
check("lookup", found.schema_id == order_id and found.version == 1)
check("subjects", sorted(fresh().get_subjects()) == ["orders-value", "shop.money"])
check("referenced by", fresh().get_referenced_by("shop.money", 1) == [order_id])

check("compatible change", fresh().test_compatibility("orders-value", Schema(ORDER2, "PROTOBUF", [ref])))
check("incompatible change", not fresh().test_compatibility("orders-value", Schema(BAD, "PROTOBUF", [ref])))
e = refused("incompatible registration", lambda: fresh().register_schema("orders-value", Schema(BAD, "PROTOBUF", [ref])), 409)
check("refusal names the rule and the field", "FIELD_SCALAR_KIND_CHANGED" in e.error_message and "field id" in e.error_message)
v2 = fresh().register_schema("orders-value", Schema(ORDER2, "PROTOBUF", [ref]))
check("versions", fresh().get_versions("orders-value") == [1, 2] and fresh().get_version("orders-value", 2).schema_id == v2)

check("global level", fresh().get_compatibility() == "BACKWARD")
fresh().set_compatibility("orders-value", "FULL_TRANSITIVE")
check("subject level", fresh().get_compatibility("orders-value") == "FULL_TRANSITIVE")
refused("missing subject", lambda: fresh().get_latest_version("nope"), 40401)
refused("missing id", lambda: fresh().get_schema(999), 40403)
refused("referenced version", lambda: fresh().delete_version("shop.money", 1), 42206)

check("soft delete", fresh().delete_version("orders-value", 1) == 1)
check("after soft delete", fresh().get_versions("orders-value") == [2])
check("hard delete", fresh().delete_version("orders-value", 1, permanent=True) == 1)
check("delete subject", fresh().delete_subject("orders-value") == [2])
check("delete subject permanently", fresh().delete_subject("orders-value", permanent=True) == [2])
check("gone", sorted(fresh().get_subjects()) == ["shop.money"])

# Confluent's built-in imports need no reference; format=serialized answers
# the schema as a base64 FileDescriptorProto.
DATED = ('syntax = "proto3";\npackage shop;\nimport "google/type/date.proto";\nimport "google/protobuf/timestamp.proto";\n'
         'import "confluent/meta.proto";\nmessage Dated { google.type.Date day = 1; google.protobuf.Timestamp at = 2; }\n')
dated_id = fresh().register_schema("dated-value", Schema(DATED, "PROTOBUF"))
ser = fresh().get_schema(dated_id, fmt="serialized")
fdp = descriptor_pb2.FileDescriptorProto.FromString(base64.standard_b64decode(ser.schema_str))
check("serialized by id", fdp.package == "shop" and [m.name for m in fdp.message_type] == ["Dated"]
      and list(fdp.dependency) == ["google/type/date.proto", "google/protobuf/timestamp.proto", "confluent/meta.proto"])
check("serialized version", fresh().get_latest_version("dated-value", fmt="serialized").schema.schema_str == ser.schema_str)

# The stock serializer registers a message class whose file imports
# built-ins (google/type/date.proto, google/protobuf/timestamp.proto: sent
# with no reference) and the stock deserializer, given the registry client,
# fetches its schema by id (serialized) and decodes the record.
f = descriptor_pb2.FileDescriptorProto(name="shop/dated.proto", package="shop", syntax="proto3",
                                       dependency=["google/type/date.proto", "google/protobuf/timestamp.proto"])
m = f.message_type.add(name="Dated")
m.field.add(name="day", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
            label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL, type_name=".google.type.Date")
m.field.add(name="placed_at", number=2, type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
            label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL, type_name=".google.protobuf.Timestamp")
descriptor_pool.Default().Add(f)
Dated = message_factory.GetMessageClass(descriptor_pool.Default().FindMessageTypeByName("shop.Dated"))
ctx = SerializationContext("dt", MessageField.VALUE)
msg = Dated(day=date_pb2.Date(year=2026, month=11, day=30), placed_at=timestamp_pb2.Timestamp(seconds=1796068800))
data = ProtobufSerializer(Dated, fresh(), {"use.deprecated.format": False})(msg, ctx)
check("serializer registered dt-value", fresh().get_latest_version("dt-value").schema_id == int.from_bytes(data[1:5], "big"))
back = ProtobufDeserializer(Dated, {"use.deprecated.format": False}, fresh())(data, ctx)
check("deserializer with the registry client", back == msg)

# A message whose file imports another of the application's files: the
# stock serializer registers the import first, under its path as the
# subject, as a base64 FileDescriptorProto (not .proto text), then the
# message's file with a reference to it; the stock deserializer fetches
# both, serialized.
price = descriptor_pb2.FileDescriptorProto(name="shop/price.proto", package="shop.price", syntax="proto3")
pm = price.message_type.add(name="Price")
pm.field.add(name="units", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
             label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
pm.field.add(name="currency_code", number=2, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
             label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
descriptor_pool.Default().Add(price)
priced = descriptor_pb2.FileDescriptorProto(name="shop/priced.proto", package="shop", syntax="proto3",
                                            dependency=["shop/price.proto"])
qm = priced.message_type.add(name="Priced")
qm.field.add(name="sku", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
             label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
qm.field.add(name="price", number=2, type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
             label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL, type_name=".shop.price.Price")
descriptor_pool.Default().Add(priced)
Price = message_factory.GetMessageClass(descriptor_pool.Default().FindMessageTypeByName("shop.price.Price"))
Priced = message_factory.GetMessageClass(descriptor_pool.Default().FindMessageTypeByName("shop.Priced"))
pctx = SerializationContext("priced", MessageField.VALUE)
pmsg = Priced(sku="s-1", price=Price(units=1250, currency_code="EUR"))
try:
    pdata = ProtobufSerializer(Priced, fresh(), {"use.deprecated.format": False})(pmsg, pctx)
except Exception as e:  # the serializer wraps the registry's refusal
    check(f"serializer registered a message importing another file ({e})", False)
check("import registered under its path", fresh().get_latest_version("shop/price.proto").version == 1)
pv = fresh().get_latest_version("priced-value")
check("importer registered with its reference", pv.schema_id == int.from_bytes(pdata[1:5], "big")
      and [(r.name, r.subject, r.version) for r in pv.schema.references] == [("shop/price.proto", "shop/price.proto", 1)])
check("deserializer fetches the import", ProtobufDeserializer(Priced, {"use.deprecated.format": False}, fresh())(pdata, pctx) == pmsg)
print("all steps passed")
