"""Drives wail's schema registry with confluent-kafka's SchemaRegistryClient
(an independent client: PyPI confluent-kafka), as TestConfluentPythonClient
runs it: python3 confluent_client.py <registry url>. Exits non-zero, saying
which step failed, when the registry answers anything but what Confluent's
registry would."""

import sys

from confluent_kafka.schema_registry import Schema, SchemaReference, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

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
print("all steps passed")
