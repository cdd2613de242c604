"""confluent-kafka's ProtobufSerializer and ProtobufDeserializer against
wail's registry, as TestConfluentPythonWire runs it:

    python3 confluent_wire.py <registry url> <FileDescriptorSet hex> <record hex>

The serializer registers the file of shop.Order (base64 descriptor form,
as it always does) under orders-value and writes shop.Order.Line
{sku: "x", qty: 2} in the Confluent wire format: printed as "serialized
<hex>". The deserializer reads <record hex> (written by wail's Go code) as
shop.Order: printed as "deserialized <json>"."""

import json
import sys

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

url, fds_hex, record_hex = sys.argv[1], sys.argv[2], sys.argv[3]
fds = descriptor_pb2.FileDescriptorSet.FromString(bytes.fromhex(fds_hex))
pool = descriptor_pool.DescriptorPool()
for f in fds.file:
    pool.Add(f)
Order = message_factory.GetMessageClass(pool.FindMessageTypeByName("shop.Order"))
Line = message_factory.GetMessageClass(pool.FindMessageTypeByName("shop.Order.Line"))

ctx = SerializationContext("orders", MessageField.VALUE)
sr = SchemaRegistryClient({"url": url})
ser = ProtobufSerializer(Line, sr, {"use.deprecated.format": False})
print("serialized", ser(Line(sku="x", qty=2), ctx).hex())

de = ProtobufDeserializer(Order, {"use.deprecated.format": False})
msg = de(bytes.fromhex(record_hex), ctx)
print("deserialized", json.dumps(json_format.MessageToDict(msg), sort_keys=True))
