"""A stock Confluent consumer of a typed table's event topic, as
TestConfluentPythonConsumer runs it:

    python3 consume_typed.py <brokers> <topic> <proto dir> <key proto> <value proto> <key message> <value message> <records> [<registry url>]

Classes are generated with grpcio-tools (protoc) from the same .proto
files the table was created with. Every record of the topic from the
beginning (<records> of them, as wail's own reader counted) is decoded with
confluent-kafka's ProtobufDeserializer (key and value; a null value is a
tombstone and decodes as None). One JSON line per record, then
"records <n>"; any record that fails to decode fails the run.

Given wail's registry URL, the deserializers get confluent-kafka's
SchemaRegistryClient: each record's writer schema is fetched by id
(format=serialized) and its message indexes resolved in it, as a Confluent
consumer does; each value is also decoded with a class built from that
writer schema alone and must read the same. "fetched <ids>" lists the ids
fetched."""

import base64
import importlib
import json
import os
import sys
import tempfile
import time

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.common.protobuf import _init_pool
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, _resolve_named_schema
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.type import date_pb2
from grpc_tools import protoc

brokers, topic, proto_dir, key_proto, value_proto, key_msg, value_msg = sys.argv[1:8]
want = int(sys.argv[8])
registry = SchemaRegistryClient({"url": sys.argv[9]}) if len(sys.argv) > 9 else None

out = tempfile.mkdtemp()
# Confluent's built-in imports, as .proto files: google/type/*.proto from
# googleapis-common-protos (a confluent-kafka[protobuf] dependency), the
# well-known types from grpcio-tools.
common_protos = os.path.dirname(os.path.dirname(os.path.dirname(date_pb2.__file__)))
well_known = os.path.join(os.path.dirname(protoc.__file__), "_proto")
for f in (key_proto, value_proto):
    rc = protoc.main(["protoc", "-I" + proto_dir, "-I" + common_protos, "-I" + well_known, "--python_out=" + out, f])
    if rc != 0:
        sys.exit("protoc failed on %s: %d" % (f, rc))
sys.path.insert(0, out)


def message_class(proto, name):
    mod = importlib.import_module(os.path.splitext(proto)[0].replace("/", ".") + "_pb2")
    return getattr(mod, name.split(".")[-1])


Key, Value = message_class(key_proto, key_msg), message_class(value_proto, value_msg)
conf = {"use.deprecated.format": False}
key_de, value_de = ProtobufDeserializer(Key, conf, registry), ProtobufDeserializer(Value, conf, registry)
writers = {}  # schema id -> the value class built from the writer schema wail serves


def writer_class(schema_id):
    """The value message's class from the writer schema alone, as wail
    serves it by id (serialized), references resolved through the registry."""
    if schema_id not in writers:
        s = registry.get_schema(schema_id, fmt="serialized")
        pool = descriptor_pool.DescriptorPool()
        _init_pool(pool)
        _resolve_named_schema(s, registry, pool)
        fdp = descriptor_pb2.FileDescriptorProto.FromString(base64.standard_b64decode(s.schema_str))
        fdp.name = "writer-%d.proto" % schema_id
        pool.Add(fdp)
        writers[schema_id] = message_factory.GetMessageClass(pool.FindMessageTypeByName(value_msg))
    return writers[schema_id]

consumer = Consumer({
    "bootstrap.servers": brokers,
    "group.id": "py-" + topic,
    "enable.auto.commit": False,
    "isolation.level": "read_committed",
    "auto.offset.reset": "earliest",
})
meta = consumer.list_topics(topic, timeout=30)
parts = sorted(meta.topics[topic].partitions)
consumer.assign([TopicPartition(topic, p, 0) for p in parts])

n = 0
deadline = time.time() + 90
while n < want:
    if time.time() > deadline:
        sys.exit("timed out after %d of %d records" % (n, want))
    m = consumer.poll(1.0)
    if m is None:
        continue
    if m.error():
        sys.exit("consumer error: %s" % m.error())
    p = m.partition()
    key = key_de(m.key(), SerializationContext(topic, MessageField.KEY))
    value = value_de(m.value(), SerializationContext(topic, MessageField.VALUE))
    headers = {k: v.decode() for k, v in (m.headers() or [])}
    if registry is not None and value is not None:
        raw = m.value()
        if raw[5] != 0:
            sys.exit("record %d/%d: message indexes %r, want [0] (the first message)" % (p, m.offset(), raw[5:7]))
        w = writer_class(int.from_bytes(raw[1:5], "big"))()
        w.ParseFromString(raw[6:])
        if json_format.MessageToDict(w) != json_format.MessageToDict(value):
            sys.exit("record %d/%d: the writer schema reads %s, the class %s" % (p, m.offset(), w, value))
    print(json.dumps({
        "partition": p,
        "offset": m.offset(),
        "key": json_format.MessageToDict(key),
        "value": None if value is None else json_format.MessageToDict(value),
        "key_id": int.from_bytes(m.key()[1:5], "big"),
        "value_id": None if m.value() is None else int.from_bytes(m.value()[1:5], "big"),
        "op": headers.get("wail.op"),
        "version": headers.get("wail.version"),
    }, sort_keys=True))
    n += 1
# Nothing more than wail counted: a second's poll finds no other record.
extra = consumer.poll(1.0)
if extra is not None and not extra.error():
    sys.exit("a record past the %d wail counted: partition %d offset %d" % (want, extra.partition(), extra.offset()))
consumer.close()
if registry is not None:
    print("fetched", ",".join(str(i) for i in sorted(writers)))
print("records", n)
