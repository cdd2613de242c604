"""A stock Confluent consumer of a typed table's event topic, as
TestConfluentPythonConsumer runs it:

    python3 consume_typed.py <brokers> <topic> <proto dir> <key proto> <value proto> <key message> <value message> <records>

Classes are generated with grpcio-tools (protoc) from the same .proto
files the table was created with. Every record of the topic from the
beginning (<records> of them, as wail's own reader counted) is decoded with
confluent-kafka's ProtobufDeserializer (key and value; a null value is a
tombstone and decodes as None). One JSON line per record, then
"records <n>"; any record that fails to decode fails the run."""

import importlib
import json
import os
import sys
import tempfile
import time

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import json_format
from grpc_tools import protoc

brokers, topic, proto_dir, key_proto, value_proto, key_msg, value_msg = sys.argv[1:8]
want = int(sys.argv[8])

out = tempfile.mkdtemp()
for f in (key_proto, value_proto):
    rc = protoc.main(["protoc", "-I" + proto_dir, "--python_out=" + out, f])
    if rc != 0:
        sys.exit("protoc failed on %s: %d" % (f, rc))
sys.path.insert(0, out)


def message_class(proto, name):
    mod = importlib.import_module(os.path.splitext(proto)[0].replace("/", ".") + "_pb2")
    return getattr(mod, name.split(".")[-1])


Key, Value = message_class(key_proto, key_msg), message_class(value_proto, value_msg)
conf = {"use.deprecated.format": False}
key_de, value_de = ProtobufDeserializer(Key, conf), ProtobufDeserializer(Value, conf)

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
print("records", n)
