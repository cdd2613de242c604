"""Drives wail's schema registry with auth on through confluent-kafka's
SchemaRegistryClient, which can only send Basic auth (basic.auth.user.info),
as TestRegistryBasicAuthPython runs it:

    python3 registry_basic_auth.py <registry url> <ca file> <admin name:token> <reader name:token>

The password is a wail token; the user is the token's name. Exits non-zero,
saying which step failed."""

import sys

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

URL, CA, ADMIN, READER = sys.argv[1:5]
READER_TOKEN = READER.split(":", 1)[1]
MONEY = 'syntax = "proto3";\npackage shop.money;\nmessage Money { int64 units = 1; string currency = 2; }\n'


def check(what, cond):
    if not cond:
        print("FAILED:", what, file=sys.stderr)
        sys.exit(1)
    print("ok:", what)


def client(user_info):
    return SchemaRegistryClient({"url": URL, "ssl.ca.location": CA,
                                 "basic.auth.user.info": user_info})


def refused(what, fn, status):
    try:
        fn()
    except SchemaRegistryError as e:
        check(f"{what} refused with HTTP {status} (got {e.http_status_code}: {e.error_message})",
              e.http_status_code == status)
        return
    check(f"{what} refused", False)


sid = client(ADMIN).register_schema("shop.money", Schema(MONEY, "PROTOBUF"))
check("the admin token registers a schema", sid > 0)
check("the read token lists the subjects", client(READER).get_subjects() == ["shop.money"])
check("the read token reads the schema by id", client(READER).get_schema(sid).schema_str == MONEY)
refused("a registration with the read token", lambda: client(READER).register_schema(
    "other", Schema(MONEY, "PROTOBUF")), 403)
refused("a wrong token", lambda: client(ADMIN[:-4] + ("AAAA" if not ADMIN.endswith("AAAA") else "BBBB")).get_subjects(), 401)
refused("another token's name as the user", lambda: client(ADMIN.split(":", 1)[0] + ":" + READER_TOKEN).get_subjects(), 401)
print("all steps passed")
